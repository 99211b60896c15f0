// The report being written: markdown tables, plots (gnuplot), key figures and the list
// of places where pmalloc loses, collected from every section, and the section table.
//
// A section is one function in its own file (section_<id>.cpp) that measures, then
// appends markdown to ctx.md, may add plots, key figures (ctx.key) and losses
// (ctx.loss). Sections are listed in sections.cpp; adding one is a new file plus one line
// there. Sections must keep their own run short (quick mode: seconds) and do anything
// heavy or fallible in forked children (harness.hpp).
#pragma once

#include <cstdarg>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "harness.hpp"

namespace bench {

class Table {
 public:
  explicit Table(std::vector<std::string> header) : header_(std::move(header)) {}
  void row(std::vector<std::string> cells) { rows_.push_back(std::move(cells)); }
  std::string markdown() const;

 private:
  std::vector<std::string> header_;
  std::vector<std::vector<std::string>> rows_;
};

struct Series {
  std::string label;
  std::vector<std::pair<double, double>> points;
};

struct Plot {
  std::string file;  // e.g. "footprint-64.png" (written to the plot directory)
  std::string title;
  std::string xlabel;
  std::string ylabel;
  bool logx = false;
  bool logy = false;
  std::vector<Series> series;
  std::string extra;  // more gnuplot commands (e.g. "set yrange [1:*]")
};

struct KeyFigure {
  std::string what;
  std::string target;    // "<= 68", "-" when none
  std::string measured;  // with the figures it is the ratio of
  std::string verdict;   // "met", "missed", "-"
};

struct Context {
  bool quick = false;
  Machine machine;
  std::ostringstream md;         // the current section's text
  std::vector<Plot> plots;       // all plots so far
  std::vector<KeyFigure> key;    // for the summary table at the top
  std::vector<std::string> loss; // "where pmalloc loses" bullet points

  // Registers a plot; returns the markdown that shows it.
  std::string plot(Plot p);
  // Progress line on stderr (the report itself goes to the file).
  void progress(const char* format, ...) __attribute__((format(printf, 2, 3)));
};

struct Section {
  const char* id;     // for --only
  const char* title;  // the report heading
  void (*run)(Context&);
};
const std::vector<Section>& sections();

// Writes data files and a gnuplot script per plot into `dir` and runs gnuplot.
// Returns "" or what went wrong.
std::string render_plots(const std::vector<Plot>& plots, const std::string& dir);

}  // namespace bench
