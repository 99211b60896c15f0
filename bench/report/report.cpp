// Report helpers: markdown tables and gnuplot plots (see report.hpp).
#include "report.hpp"

#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>

namespace bench {

std::string Table::markdown() const {
  std::string s = "|";
  for (const auto& h : header_) s += " " + h + " |";
  s += "\n|";
  for (std::size_t i = 0; i < header_.size(); ++i) s += i == 0 ? "---|" : "---:|";
  s += "\n";
  for (const auto& r : rows_) {
    s += "|";
    for (const auto& c : r) s += " " + c + " |";
    s += "\n";
  }
  return s + "\n";
}

std::string Context::plot(Plot p) {
  const std::string link = "![" + p.title + "](plots/" + p.file + ")\n\n";
  plots.push_back(std::move(p));
  return link;
}

void Context::progress(const char* format, ...) {
  va_list ap;
  va_start(ap, format);
  std::fprintf(stderr, "  ");
  std::vfprintf(stderr, format, ap);
  std::fprintf(stderr, "\n");
  va_end(ap);
}

namespace {

std::string quote(const std::string& s) {
  std::string q = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\') q += '\\';
    q += c;
  }
  return q + "\"";
}

}  // namespace

std::string render_plots(const std::vector<Plot>& plots, const std::string& dir) {
  mkdir(dir.c_str(), 0755);
  std::string errors;
  for (const Plot& p : plots) {
    const std::string base = dir + "/" + p.file.substr(0, p.file.rfind('.'));
    std::string script = "set terminal pngcairo noenhanced size 1000,540 font 'DejaVu Sans,11'\n";
    script += "set output " + quote(dir + "/" + p.file) + "\n";
    script += "set title " + quote(p.title) + "\nset xlabel " + quote(p.xlabel) + "\nset ylabel " +
              quote(p.ylabel) + "\n";
    script += "set key outside right top\nset grid\n";
    if (p.logx) script += "set logscale x\n";
    if (p.logy) script += "set logscale y\n";
    script += p.extra + "\n";
    std::string plot_cmd = "plot ";
    bool any = false;
    for (std::size_t i = 0; i < p.series.size(); ++i) {
      const Series& s = p.series[i];
      if (s.points.empty()) continue;
      const std::string data = base + "." + std::to_string(i) + ".dat";
      std::ofstream out(data);
      for (const auto& [x, y] : s.points) out << x << ' ' << y << '\n';
      if (any) plot_cmd += ", ";
      plot_cmd += quote(data) + " using 1:2 with linespoints lw 2 pt " + std::to_string(5 + static_cast<int>(i)) +
                  " title " + quote(s.label);
      any = true;
    }
    if (!any) continue;
    script += plot_cmd + "\n";
    const std::string script_file = base + ".gp";
    std::ofstream(script_file) << script;
    const std::string cmd = "gnuplot " + quote(script_file) + " 2>&1";
    const int rc = std::system(cmd.c_str());
    if (rc != 0) errors += "gnuplot failed for " + p.file + "; ";
    // Keep only the PNG in the output directory.
    for (std::size_t i = 0; i < p.series.size(); ++i) std::remove((base + "." + std::to_string(i) + ".dat").c_str());
    std::remove(script_file.c_str());
  }
  return errors;
}

}  // namespace bench
