// report_compare: the one benchmark report of pmalloc (issue 7, and issue 2's targets).
//
// In a single run it measures pmalloc side by side with glibc malloc, libsodium
// (sodium_malloc + sodium_mprotect_readonly) and a naive mmap-per-object + mprotect
// scheme, and writes docs/benchmarks.md plus PNG plots (gnuplot) in docs/plots/. Every
// figure is a ratio of two measurements from the same run; the machine and the exact
// command go into the report. Sections (sections.cpp) can be run alone with --only.
//
//   report_compare [--quick] [--out DIR] [--only id,id] [--list] [--force]
#include <dirent.h>
#include <pmalloc/pmalloc.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <set>
#include <sstream>

#include "report.hpp"

namespace {

void usage(std::FILE* out) {
  std::fprintf(out,
               "usage: report_compare [--quick] [--out DIR] [--only id,id] [--list] [--force]\n"
               "  --quick      fewer sizes, counts and repetitions (about a minute)\n"
               "  --out DIR    write DIR/benchmarks.md and DIR/plots/*.png (default: %s/docs)\n"
               "  --only ids   run only these sections (the report goes to stdout unless --out is given)\n"
               "  --list       list the sections\n"
               "  --force      run even in a debug-checks or sanitizer build (figures are then meaningless)\n",
               PMALLOC_SOURCE_DIR);
}

std::string shell_quote(const std::string& s) {
  if (s.find_first_of(" \t'\"$\\") == std::string::npos) return s;
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

// The command as the user would type it from the source directory.
std::string command_line(int argc, char** argv) {
  std::string prog = argv[0];
  char cwd[4096];
  std::string here = getcwd(cwd, sizeof cwd) != nullptr ? cwd : "";
  const std::string src = PMALLOC_SOURCE_DIR;
  if (!prog.empty() && prog[0] != '/') {
    here.push_back('/');
    prog.insert(0, here);
  }
  if (prog.size() > src.size() && prog.compare(0, src.size(), src) == 0 && prog[src.size()] == '/') {
    prog.erase(0, src.size() + 1);
  }
  std::string cmd = prog;
  for (int i = 1; i < argc; ++i) {
    cmd.push_back(' ');
    cmd.append(shell_quote(argv[i]));
  }
  return cmd;
}

std::vector<std::string> team_notes() {
  std::vector<std::string> files;
  const std::string dir = std::string(PMALLOC_SOURCE_DIR) + "/docs/bench";
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* e = readdir(d)) {
      const std::string n = e->d_name;
      if (n.size() > 3 && n.substr(n.size() - 3) == ".md") files.push_back(n);
    }
    closedir(d);
  }
  std::sort(files.begin(), files.end());
  return files;
}

}  // namespace

namespace bench {
int wr_child_main(std::size_t iterations);
}

int main(int argc, char** argv) {
  // Hidden: a child process of the "wr" section (one per writer back end).
  if (argc == 3 && std::string(argv[1]) == "--wr-child") {
    return bench::wr_child_main(static_cast<std::size_t>(std::strtoul(argv[2], nullptr, 10)));
  }
  bool quick = false, force = false, list = false;
  std::string out_dir;
  std::set<std::string> only;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--quick") {
      quick = true;
    } else if (a == "--force") {
      force = true;
    } else if (a == "--list") {
      list = true;
    } else if ((a == "--out" || a == "--only") && i + 1 < argc) {
      const std::string v = argv[++i];
      if (a == "--out") {
        out_dir = v;
      } else {
        std::stringstream ids(v);
        for (std::string id; std::getline(ids, id, ',');) only.insert(id);
      }
    } else if (a == "-h" || a == "--help") {
      usage(stdout);
      return 0;
    } else {
      std::fprintf(stderr, "report_compare: unknown or incomplete option %s\n", a.c_str());
      usage(stderr);
      return 2;
    }
  }
  if (list) {
    for (const bench::Section& s : bench::sections()) std::printf("%-12s %s\n", s.id, s.title);
    return 0;
  }
  for (const std::string& id : only) {
    const auto& t = bench::sections();
    if (std::none_of(t.begin(), t.end(), [&](const bench::Section& s) { return id == s.id; })) {
      std::fprintf(stderr, "report_compare: no section '%s' (see --list)\n", id.c_str());
      return 2;
    }
  }
  if ((PMALLOC_BENCH_DEBUG_CHECKS || std::string(PMALLOC_BENCH_SANITIZE) != "") && !force) {
    std::fprintf(stderr,
                 "report_compare: this build has PMALLOC_DEBUG_CHECKS or sanitizers on; its figures would be\n"
                 "meaningless. Build with -DCMAKE_BUILD_TYPE=Release (scripts/bench.sh does), or pass --force.\n");
    return 2;
  }
  const bool to_stdout = !only.empty() && out_dir.empty();
  if (out_dir.empty()) out_dir = std::string(PMALLOC_SOURCE_DIR) + "/docs";

  bench::Context ctx;
  ctx.quick = quick;
  ctx.machine = bench::machine();
  const auto t0 = bench::Clock::now();
  std::ostringstream body;
  for (const bench::Section& s : bench::sections()) {
    if (!only.empty() && only.count(s.id) == 0) continue;
    std::fprintf(stderr, "section %s: %s\n", s.id, s.title);
    const auto ts = bench::Clock::now();
    ctx.md.str("");
    s.run(ctx);
    body << "## " << s.title << "\n\n" << ctx.md.str();
    std::fprintf(stderr, "  (%s)\n", bench::human_time(bench::seconds_since(ts)).c_str());
  }
  const double total = bench::seconds_since(t0);

  std::time_t now = std::time(nullptr);
  char date[64];
  std::strftime(date, sizeof date, "%Y-%m-%d %H:%M UTC", std::gmtime(&now));
  const bench::Machine& m = ctx.machine;
  std::ostringstream md;
  md << "# pmalloc benchmarks\n\n"
     << "<!-- Written by bench/report (report_compare); edit the sections there and rerun, not this file. -->\n\n"
     << "pmalloc measured side by side with glibc `malloc`, libsodium's guarded allocations "
        "(`sodium_malloc` + `sodium_mprotect_readonly`) and a naive one-`mmap`-per-object + `mprotect` scheme, "
        "in one run of one program. Every comparison is a ratio of two figures from this run on this machine; "
        "absolute times are shown for scale only.\n\n"
     << "## How this was produced\n\n"
     << "```sh\n"
     << "scripts/bench.sh" << (quick ? " --quick" : "") << "   # = the two commands below\n"
     << "cmake -S . -B build-bench -G Ninja -DCMAKE_BUILD_TYPE=Release -DPMALLOC_BUILD_TESTS=OFF -DPMALLOC_BUILD_EXAMPLES=OFF\n"
     << "cmake --build build-bench --target report_compare\n"
     << command_line(argc, argv) << "\n"
     << "```\n\n"
     << "Run " << date << (quick ? " in --quick mode" : "") << ", " << bench::human_time(total) << ".\n\n";
  bench::Table mt({"machine", ""});
  mt.row({"CPU", m.cpu + " (" + std::to_string(m.cpus) + " online CPUs, `nproc` = " + std::to_string(m.cpus) + ")"});
  mt.row({"memory", m.memory});
  mt.row({"kernel", m.kernel + (m.seal ? " (mseal available)" : " (no mseal)")});
  mt.row({"OS", m.os});
  mt.row({"source", std::string("commit ") + PMALLOC_BENCH_COMMIT + " (configured then)"});
  mt.row({"compiler", m.compiler + ", build type " + PMALLOC_BENCH_BUILD_TYPE});
  mt.row({"libsodium", m.sodium});
  mt.row({"vm.max_map_count", std::to_string(m.max_map_count)});
  mt.row({"load average at start", m.load});
  mt.row({"first-touch page fault", bench::human_time(m.page_fault_seconds)});
  md << mt.markdown();
  if (m.cpus <= 2) {
    md << "On a machine with this few CPUs, anything else running disturbs the timings; the load average above "
          "says how quiet it was. Memory figures do not depend on it.\n\n";
  }
  if (!ctx.key.empty()) {
    bench::Table kt({"key figure", "target", "measured", "verdict"});
    for (const auto& k : ctx.key) kt.row({k.what, k.target, k.measured, k.verdict});
    md << "## Key figures\n\n" << kt.markdown();
  }
  md << "## Where pmalloc loses\n\n";
  if (ctx.loss.empty()) {
    md << "Nothing measured in this run: no ratio came out against pmalloc.\n\n";
  } else {
    for (const std::string& l : ctx.loss) md << "- " << l << "\n";
    md << "\n";
  }
  md << body.str();
  const std::vector<std::string> notes = team_notes();
  if (!notes.empty() && only.empty()) {
    md << "## Notes from the component benchmarks\n\n"
          "Measurements recorded by each component's own benchmark (not part of this run):\n\n";
    for (const std::string& n : notes) md << "- [" << n << "](bench/" << n << ")\n";
    md << "\n";
  }

  if (to_stdout) {
    std::cout << md.str();
    return 0;
  }
  const std::string path = out_dir + "/benchmarks.md";
  std::filesystem::create_directories(out_dir);
  std::ofstream file(path);
  file << md.str();
  file.close();
  if (!file) {
    std::fprintf(stderr, "report_compare: cannot write %s\n", path.c_str());
    return 1;
  }
  std::string plot_errors;
  if (std::system("command -v gnuplot >/dev/null 2>&1") == 0) {
    plot_errors = bench::render_plots(ctx.plots, out_dir + "/plots");
  } else {
    plot_errors = "gnuplot is not installed (Debian gnuplot-nox): no plots";
  }
  std::fprintf(stderr, "wrote %s (%s)%s%s\n", path.c_str(), bench::human_time(total).c_str(),
               plot_errors.empty() ? "" : "; ", plot_errors.c_str());
  return plot_errors.empty() ? 0 : 1;
}
