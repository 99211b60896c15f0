// Measurement harness (see harness.hpp).
#include "harness.hpp"

#include <malloc.h>
#include <pmalloc/pmalloc.h>
#include <sys/mman.h>
#include <sys/utsname.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <sstream>

#ifdef PMALLOC_HAVE_SODIUM
#include <sodium.h>
#endif

namespace bench {

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const std::size_t m = v.size() / 2;
  return v.size() % 2 ? v[m] : (v[m - 1] + v[m]) / 2;
}

void trim_heap() { malloc_trim(0); }

std::size_t page_size() {
  static const std::size_t p = static_cast<std::size_t>(sysconf(_SC_PAGESIZE));
  return p;
}

Memory memory_now(bool with_mappings) {
  Memory m;
  // RssAnon, not the RSS of statm: a forked child faults in shared library pages as it
  // runs code, which would count as "memory of the allocations" otherwise.
  if (std::FILE* f = std::fopen("/proc/self/status", "r")) {
    char line[256];
    while (std::fgets(line, sizeof line, f) != nullptr) {
      if (std::strncmp(line, "RssAnon:", 8) == 0) m.rss = std::atol(line + 8) * 1024;
      if (std::strncmp(line, "VmPTE:", 6) == 0) m.pte = std::atol(line + 6) * 1024;
    }
    std::fclose(f);
  }
  if (with_mappings) {
    if (std::FILE* f = std::fopen("/proc/self/maps", "r")) {
      int c;
      while ((c = std::fgetc(f)) != EOF) m.mappings += c == '\n';
      std::fclose(f);
    }
  }
  return m;
}

namespace {

std::string first_line_with(const char* path, const char* key) {
  std::ifstream in(path);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(key, 0) == 0) {
      const std::size_t colon = line.find(':');
      std::string v = colon == std::string::npos ? line : line.substr(colon + 1);
      v.erase(0, v.find_first_not_of(" \t"));
      return v;
    }
  }
  return "";
}

std::string read_first_line(const char* path) {
  std::ifstream in(path);
  std::string line;
  std::getline(in, line);
  return line;
}

}  // namespace

Machine machine() {
  Machine m;
  m.cpu = first_line_with("/proc/cpuinfo", "model name");
  m.cpus = static_cast<unsigned>(sysconf(_SC_NPROCESSORS_ONLN));
  utsname u{};
  if (uname(&u) == 0) m.kernel = std::string(u.sysname) + " " + u.release + " " + u.machine;
  const long kib = std::atol(first_line_with("/proc/meminfo", "MemTotal").c_str());
  m.memory = human_bytes(double(kib) * 1024);
  m.os = first_line_with("/etc/os-release", "PRETTY_NAME");
  if (m.os.size() >= 2 && m.os.front() == '"') m.os = m.os.substr(1, m.os.size() - 2);
  m.os = m.os.empty() ? "unknown" : m.os.substr(m.os.find('=') + 1);
  if (!m.os.empty() && m.os.front() == '"') m.os = m.os.substr(1, m.os.size() - 2);
#if defined(__clang__)
  m.compiler = std::string("clang ") + __clang_version__;
#elif defined(__GNUC__)
  m.compiler = std::string("g++ ") + __VERSION__;
#endif
  m.load = read_first_line("/proc/loadavg");
  {
    // Cost of a first-touch page fault: touch 1024 fresh pages.
    const std::size_t pages = 1024, bytes = pages * page_size();
    void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p != MAP_FAILED) {
      const auto t0 = Clock::now();
      for (std::size_t i = 0; i < pages; ++i) static_cast<volatile char*>(p)[i * page_size()] = 1;
      m.page_fault_seconds = seconds_since(t0) / double(pages);
      munmap(p, bytes);
    }
  }
  m.max_map_count = std::atol(read_first_line("/proc/sys/vm/max_map_count").c_str());
  m.seal = pmalloc_seal_supported() == 1;
#ifdef PMALLOC_HAVE_SODIUM
  m.sodium = sodium_version_string();
#else
  m.sodium = "not built in (libsodium-dev missing)";
#endif
  return m;
}

std::string fmt(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

std::string human_bytes(double bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (bytes >= 1024 && u < 4) {
    bytes /= 1024;
    ++u;
  }
  return u == 0 ? fmt(bytes, 0) + " B" : fmt(bytes, bytes < 10 ? 2 : 1) + " " + units[u];
}

std::string human_count(double n) {
  if (n >= 1e6 && std::fmod(n, 1e6) == 0) return fmt(n / 1e6, 0) + "M";
  if (n >= 1e3 && std::fmod(n, 1e3) == 0) return fmt(n / 1e3, 0) + "k";
  return fmt(n, 0);
}

std::string human_time(double s) {
  if (s < 1e-6) return fmt(s * 1e9, 1) + " ns";
  if (s < 1e-3) return fmt(s * 1e6, s < 1e-5 ? 2 : 1) + " µs";
  if (s < 1) return fmt(s * 1e3, s < 1e-2 ? 2 : 1) + " ms";
  return fmt(s, 2) + " s";
}

std::string ratio(double a, double b) {
  if (b == 0) return "-";
  const double r = a / b;
  return fmt(r, r < 10 ? 2 : (r < 100 ? 1 : 0)) + "×";
}

std::string errno_name(int e) {
  const char* n = strerrorname_np(e);
  return n != nullptr ? n : std::to_string(e);
}

}  // namespace bench
