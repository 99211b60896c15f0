// Observability: pmalloc_stats_print ("table" and "json", every live pool, errors),
// PMALLOC_STATS=1/json (report on stderr at exit) and PMALLOC_VERBOSE=1 (life-cycle log),
// the last two checked on the stderr of a child program started with the variable set.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <pmalloc/pmalloc.hpp>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

extern char** environ;

namespace {

// ---- a small strict JSON reader, enough to check the document and look values up ----

struct Json {
  enum Kind { null, boolean, number, string, array, object } kind = null;
  bool b = false;
  double n = 0;
  std::string s;
  std::vector<Json> items;
  std::map<std::string, Json> members;
  const Json& operator[](const std::string& key) const {
    static const Json missing;
    auto it = members.find(key);
    return it == members.end() ? missing : it->second;
  }
};

class JsonReader {
 public:
  explicit JsonReader(const std::string& text) : t_(text) {}
  bool parse(Json* out) {
    if (!value(out)) return false;
    ws();
    return i_ == t_.size();
  }

 private:
  void ws() {
    while (i_ < t_.size() && std::strchr(" \t\r\n", t_[i_]) != nullptr) ++i_;
  }
  bool lit(const char* word) {
    const std::size_t n = std::strlen(word);
    if (t_.compare(i_, n, word) != 0) return false;
    i_ += n;
    return true;
  }
  static void utf8(std::string* s, unsigned cp) {
    if (cp < 0x80) {
      *s += static_cast<char>(cp);
    } else if (cp < 0x800) {
      *s += static_cast<char>(0xc0 | (cp >> 6));
      *s += static_cast<char>(0x80 | (cp & 0x3f));
    } else {
      *s += static_cast<char>(0xe0 | (cp >> 12));
      *s += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
      *s += static_cast<char>(0x80 | (cp & 0x3f));
    }
  }
  bool str(std::string* s) {
    if (t_[i_] != '"') return false;
    for (++i_; i_ < t_.size(); ++i_) {
      const unsigned char c = static_cast<unsigned char>(t_[i_]);
      if (c == '"') {
        ++i_;
        return true;
      }
      if (c < 0x20) return false;  // control characters must be escaped
      if (c != '\\') {
        *s += static_cast<char>(c);
        continue;
      }
      if (++i_ >= t_.size()) return false;
      switch (t_[i_]) {
        case '"': *s += '"'; break;
        case '\\': *s += '\\'; break;
        case '/': *s += '/'; break;
        case 'n': *s += '\n'; break;
        case 't': *s += '\t'; break;
        case 'r': *s += '\r'; break;
        case 'b': *s += '\b'; break;
        case 'f': *s += '\f'; break;
        case 'u': {
          if (i_ + 4 >= t_.size()) return false;
          utf8(s, static_cast<unsigned>(std::stoul(t_.substr(i_ + 1, 4), nullptr, 16)));
          i_ += 4;
          break;
        }
        default: return false;
      }
    }
    return false;
  }
  bool value(Json* v) {
    ws();
    if (i_ >= t_.size()) return false;
    const char c = t_[i_];
    if (c == '{') {
      v->kind = Json::object;
      ++i_;
      ws();
      if (t_[i_] == '}') return ++i_, true;
      for (;;) {
        ws();
        std::string key;
        if (!str(&key)) return false;
        ws();
        if (t_[i_++] != ':') return false;
        if (!value(&v->members[key])) return false;
        ws();
        if (t_[i_] == ',') {
          ++i_;
          continue;
        }
        return t_[i_++] == '}';
      }
    }
    if (c == '[') {
      v->kind = Json::array;
      ++i_;
      ws();
      if (t_[i_] == ']') return ++i_, true;
      for (;;) {
        v->items.emplace_back();
        if (!value(&v->items.back())) return false;
        ws();
        if (t_[i_] == ',') {
          ++i_;
          continue;
        }
        return t_[i_++] == ']';
      }
    }
    if (c == '"') {
      v->kind = Json::string;
      return str(&v->s);
    }
    if (lit("true")) return v->kind = Json::boolean, v->b = true, true;
    if (lit("false")) return v->kind = Json::boolean, true;
    if (lit("null")) return true;
    std::size_t used = 0;
    try {
      v->n = std::stod(t_.substr(i_), &used);
    } catch (...) {
      return false;
    }
    v->kind = Json::number;
    i_ += used;
    return used > 0;
  }

  const std::string& t_;
  std::size_t i_ = 0;
};

// ---- capturing output ----

// Prints to a memory stream; *error gets errno as pmalloc_stats_print left it (cleared
// before the call).
std::string print_to_string(const char* format, int* error = nullptr) {
  char* buf = nullptr;
  std::size_t size = 0;
  FILE* f = open_memstream(&buf, &size);
  errno = 0;
  pmalloc_stats_print(f, format);
  if (error != nullptr) *error = errno;
  std::fclose(f);
  std::string out(buf, size);
  std::free(buf);
  return out;
}

Json parse_or_fail(const std::string& text) {
  Json doc;
  JsonReader reader(text);
  EXPECT_TRUE(reader.parse(&doc)) << text;
  return doc;
}

const Json* find_pool(const Json& doc, const std::string& name) {
  for (const Json& p : doc["pools"].items) {
    if (p["name"].s == name) return &p;
  }
  return nullptr;
}

// The whitespace-separated cells of a line.
std::vector<std::string> cells(const std::string& line) {
  std::istringstream in(line);
  std::vector<std::string> out;
  for (std::string c; in >> c;) out.push_back(c);
  return out;
}

// The cell of `row` in the column headed `heading` (header: the table's second line).
std::string cell(const std::string& table, const std::string& row, const std::string& heading) {
  std::istringstream in(table);
  std::string title, header;
  std::getline(in, title);
  std::getline(in, header);
  const auto heads = cells(header);
  const auto values = cells(row);
  for (std::size_t i = 0; i < heads.size() && i < values.size(); ++i) {
    if (heads[i] == heading) return values[i];
  }
  return "<no column " + heading + ">";
}

// The line of the table that starts with the pool's name.
std::string table_row(const std::string& table, const std::string& name) {
  std::istringstream in(table);
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(name + " ", 0) == 0) return line;
  }
  return "";
}

// Runs f with file descriptor 2 redirected to a temporary file; returns what was written.
template <class F>
std::string capture_stderr(F&& f) {
  std::fflush(stderr);
  FILE* tmp = std::tmpfile();
  const int saved = dup(2);
  dup2(fileno(tmp), 2);
  f();
  std::fflush(stderr);
  dup2(saved, 2);
  close(saved);
  std::rewind(tmp);
  std::string out;
  char chunk[4096];
  for (std::size_t n; (n = std::fread(chunk, 1, sizeof chunk, tmp)) > 0;) out.append(chunk, n);
  std::fclose(tmp);
  return out;
}

struct ChildResult {
  int status = -1;
  std::string out, err;
};

std::string slurp(FILE* f) {
  std::rewind(f);
  std::string s;
  char chunk[4096];
  for (std::size_t n; (n = std::fread(chunk, 1, sizeof chunk, f)) > 0;) s.append(chunk, n);
  std::fclose(f);
  return s;
}

// Runs the child program with the environment of this process minus every PMALLOC_*
// variable, plus `env`.
ChildResult run_child(const std::vector<std::string>& env, const char* arg = nullptr) {
  std::vector<std::string> vars;
  for (char** e = environ; *e != nullptr; ++e) {
    if (std::strncmp(*e, "PMALLOC_", 8) != 0) vars.emplace_back(*e);
  }
  vars.insert(vars.end(), env.begin(), env.end());
  std::vector<char*> envp;
  for (auto& v : vars) envp.push_back(v.data());
  envp.push_back(nullptr);
  std::string path = PMALLOC_OBSERVABILITY_CHILD;
  std::vector<char*> argv{path.data()};
  std::string a = arg != nullptr ? arg : "";
  if (arg != nullptr) argv.push_back(a.data());
  argv.push_back(nullptr);

  FILE* out = std::tmpfile();
  FILE* err = std::tmpfile();
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fileno(out), 1);
  posix_spawn_file_actions_adddup2(&actions, fileno(err), 2);
  ChildResult r;
  pid_t pid = 0;
  const int e = posix_spawn(&pid, path.c_str(), &actions, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  if (e != 0) {
    ADD_FAILURE() << "posix_spawn " << path << ": " << std::strerror(e);
    std::fclose(out);
    std::fclose(err);
    return r;
  }
  waitpid(pid, &r.status, 0);
  r.out = slurp(out);
  r.err = slurp(err);
  return r;
}

bool exited_ok(const ChildResult& r) { return WIFEXITED(r.status) && WEXITSTATUS(r.status) == 0; }

// ---- pmalloc_stats_print in this process ----

TEST(StatsPrint, TableListsEveryLivePool) {
  pmalloc::Pool ro("obs-table-ro");
  pmalloc::Pool wr("obs-table-wr", PMALLOC_WR | PMALLOC_AUTO);
  pmalloc::Pool sealed("obs-table-sealed", PMALLOC_SEAL);
  (void)ro.strdup("read-only text");
  ro.protect();
  (void)wr.alloc(100);
  (void)sealed.alloc(10);
  sealed.protect();
  const std::string table = print_to_string("table");
  EXPECT_NE(table.find("pmalloc: "), std::string::npos) << table;
  EXPECT_NE(table.find("write-rare back end (wr_backend): "), std::string::npos) << table;
  const std::string r1 = table_row(table, "obs-table-ro");
  const std::string r2 = table_row(table, "obs-table-wr");
  const std::string r3 = table_row(table, "obs-table-sealed");
  ASSERT_FALSE(r1.empty()) << table;
  ASSERT_FALSE(r2.empty()) << table;
  ASSERT_FALSE(r3.empty()) << table;
  EXPECT_EQ(cell(table, r1, "flags"), "RO") << table;
  EXPECT_EQ(cell(table, r1, "read-only"), "yes") << table;
  EXPECT_EQ(cell(table, r1, "sealed"), "no") << table;
  EXPECT_EQ(cell(table, r1, "protects"), "1") << table;
  EXPECT_EQ(cell(table, r1, "regions"), std::to_string(ro.stats().regions)) << table;
  EXPECT_EQ(cell(table, r1, "live"), std::to_string(ro.stats().bytes_live)) << table;
  EXPECT_EQ(cell(table, r1, "committed"), std::to_string(ro.stats().bytes_committed)) << table;
  EXPECT_EQ(cell(table, r1, "protected"), std::to_string(ro.stats().bytes_protected)) << table;
  EXPECT_EQ(cell(table, r2, "flags"), "WR|AUTO") << table;
  EXPECT_EQ(cell(table, r2, "read-only"), "no") << table;
  EXPECT_EQ(cell(table, r3, "flags"), "RO|SEAL") << table;
  EXPECT_EQ(cell(table, r3, "read-only"), "yes") << table;
  EXPECT_EQ(cell(table, r3, "sealed"), pmalloc_seal_supported() ? "yes" : "no") << table;
  // Every row ends with the writer's name, the same as in the JSON document.
  const Json doc = parse_or_fail(print_to_string("json"));
  const std::string backend = doc["wr_backend"].s;
  ASSERT_FALSE(backend.empty());
  EXPECT_EQ(cell(table, r2, "wr_backend"), backend) << table;
  EXPECT_NE(table.find("(total)"), std::string::npos);
}

TEST(StatsPrint, NullFormatIsTheTable) {
  pmalloc::Pool pool("obs-null-format");
  EXPECT_FALSE(table_row(print_to_string(nullptr), "obs-null-format").empty());
}

TEST(StatsPrint, DestroyedPoolsDisappear) {
  auto pool = std::make_unique<pmalloc::Pool>("obs-soon-gone");
  EXPECT_NE(print_to_string("table").find("obs-soon-gone"), std::string::npos);
  EXPECT_NE(print_to_string("json").find("obs-soon-gone"), std::string::npos);
  pool.reset();
  EXPECT_EQ(print_to_string("table").find("obs-soon-gone"), std::string::npos);
  EXPECT_EQ(print_to_string("json").find("obs-soon-gone"), std::string::npos);
}

TEST(StatsPrint, JsonMatchesPoolStats) {
  pmalloc::Pool a("obs-json-a");
  pmalloc::Pool b("obs-json-b", PMALLOC_WR);
  for (int i = 0; i < 10; ++i) (void)a.alloc(100);
  a.protect();
  (void)b.alloc(5000);
  int error = -1;
  const Json doc = parse_or_fail(print_to_string("json", &error));
  EXPECT_EQ(error, 0) << "errno is left alone on success";
  ASSERT_EQ(doc.kind, Json::object);
  EXPECT_EQ(doc["wr_backend"].kind, Json::string);
  EXPECT_EQ(doc["seal_supported"].kind, Json::boolean);
  EXPECT_EQ(doc["seal_supported"].b, pmalloc_seal_supported() == 1);
  ASSERT_EQ(doc["pools"].kind, Json::array);
  for (const auto* pool : {&a, &b}) {
    const Json* p = find_pool(doc, pool->name());
    ASSERT_NE(p, nullptr) << pool->name();
    const pmalloc::Stats s = pool->stats();
    EXPECT_EQ(p->operator[]("bytes_live").n, static_cast<double>(s.bytes_live));
    EXPECT_EQ(p->operator[]("allocations_live").n, static_cast<double>(s.allocations_live));
    EXPECT_EQ(p->operator[]("bytes_committed").n, static_cast<double>(s.bytes_committed));
    EXPECT_EQ(p->operator[]("bytes_protected").n, static_cast<double>(s.bytes_protected));
    EXPECT_EQ(p->operator[]("bytes_reserved").n, static_cast<double>(s.bytes_reserved));
    EXPECT_EQ(p->operator[]("regions").n, static_cast<double>(s.regions));
    EXPECT_EQ(p->operator[]("protected").b, s.is_protected == 1);
    EXPECT_EQ(p->operator[]("sealed").b, s.sealed == 1);
    EXPECT_EQ(p->operator[]("flag_bits").n, static_cast<double>(s.flags));
    EXPECT_EQ(p->operator[]("wr_backend").s, doc["wr_backend"].s);
    EXPECT_EQ(p->operator[]("address").kind, Json::string);
  }
  EXPECT_EQ((*find_pool(doc, "obs-json-a"))["flags"].s, "RO");
  EXPECT_EQ((*find_pool(doc, "obs-json-b"))["flags"].s, "WR");
  EXPECT_TRUE((*find_pool(doc, "obs-json-b"))["write_rare"].b);
  EXPECT_GE(doc["totals"]["pools"].n, 2.0);
  EXPECT_EQ(doc["totals"]["pools"].n, static_cast<double>(doc["pools"].items.size()));
  EXPECT_GE(doc["totals"]["bytes_live"].n, 10 * 100 + 5000);
}

TEST(StatsPrint, NamesAreEscaped) {
  const std::string weird = "q\"uote\\back\nline\x01\xff" "caf\xc3\xa9";
  pmalloc::Pool pool(weird.c_str());
  pmalloc::Pool unnamed("");
  const Json doc = parse_or_fail(print_to_string("json"));
  EXPECT_NE(find_pool(doc, "q\"uote\\back\nline\x01\xef\xbf\xbd" "caf\xc3\xa9"), nullptr);  // \xff -> U+FFFD
  EXPECT_NE(find_pool(doc, ""), nullptr);
  const std::string table = print_to_string("table");
  EXPECT_FALSE(table_row(table, "q\"uote\\back?line??caf\xc3\xa9").empty()) << table;  // one line per pool
  EXPECT_FALSE(table_row(table, "(unnamed)").empty()) << table;
}

TEST(StatsPrint, UnknownFormatIsAnError) {
  pmalloc::Pool pool("obs-unknown-format");
  std::string out;
  const std::string err = capture_stderr([&] {
    int error = 0;
    out = print_to_string("yaml", &error);
    EXPECT_EQ(error, EINVAL);
  });
  EXPECT_TRUE(out.empty()) << out;
  EXPECT_NE(std::string(pmalloc_last_error()).find("yaml"), std::string::npos) << pmalloc_last_error();
  EXPECT_NE(err.find("unknown format"), std::string::npos) << err;
}

TEST(StatsPrint, NullStreamMeansStderr) {
  pmalloc::Pool pool("obs-to-stderr");
  const std::string err = capture_stderr([] { pmalloc_stats_print(nullptr, "table"); });
  EXPECT_FALSE(table_row(err, "obs-to-stderr").empty()) << err;
}

TEST(StatsPrint, WriteErrorSetsErrno) {
  FILE* readonly = std::fopen("/dev/null", "r");
  ASSERT_NE(readonly, nullptr);
  errno = 0;
  pmalloc_stats_print(readonly, "json");
  EXPECT_EQ(errno, EIO);
  std::fclose(readonly);
}

TEST(StatsPrint, ConsistentWhileOtherThreadsCreateAndDestroyPools) {
  std::atomic<bool> stop{false};
  std::thread churn([&] {
    for (int i = 0; i < 300 && !stop.load(); ++i) {
      pmalloc::Pool p("obs-churn");
      (void)p.alloc(64);
      if (i % 2 == 0) p.protect();
    }
  });
  for (int i = 0; i < 40; ++i) {
    const Json doc = parse_or_fail(print_to_string("json"));
    for (const Json& p : doc["pools"].items) ASSERT_FALSE(p["name"].kind != Json::string);
  }
  stop = true;
  churn.join();
}

// ---- environment variables, on a child program ----

TEST(StatsEnvironment, NothingIsPrintedByDefault) {
  const ChildResult r = run_child({});
  EXPECT_TRUE(exited_ok(r)) << r.status;
  EXPECT_EQ(r.err, "");
  const ChildResult zero = run_child({"PMALLOC_STATS=0", "PMALLOC_VERBOSE=0"});
  EXPECT_EQ(zero.err, "");
}

TEST(StatsEnvironment, StatsPrintsTheTableAtExit) {
  const ChildResult r = run_child({"PMALLOC_STATS=1"});
  EXPECT_TRUE(exited_ok(r)) << r.status;
  EXPECT_NE(r.err.find("pmalloc: 2 live pools"), std::string::npos) << r.err;
  const std::string alpha = table_row(r.err, "obs-alpha");
  EXPECT_FALSE(alpha.empty()) << r.err;
  EXPECT_EQ(cell(r.err, alpha, "read-only"), "yes") << r.err;
  EXPECT_EQ(cell(r.err, table_row(r.err, "obs-beta"), "flags"), "RO|AUTO") << r.err;
  EXPECT_EQ(r.err.find("obs-gamma"), std::string::npos) << "destroyed pools are not listed\n" << r.err;
}

TEST(StatsEnvironment, StatsJsonPrintsJsonAtExit) {
  const ChildResult r = run_child({"PMALLOC_STATS=json"});
  EXPECT_TRUE(exited_ok(r)) << r.status;
  const Json doc = parse_or_fail(r.err);
  EXPECT_EQ(doc["pools"].items.size(), 2u);
  ASSERT_NE(find_pool(doc, "obs-alpha"), nullptr);
  EXPECT_TRUE((*find_pool(doc, "obs-alpha"))["protected"].b);
}

TEST(StatsEnvironment, VerboseLogsLifeCycleEventsInOrder) {
  const ChildResult r = run_child({"PMALLOC_VERBOSE=1"});
  EXPECT_TRUE(exited_ok(r)) << r.status;
  const char* expected[] = {"pool 'obs-alpha' created", "pool 'obs-beta' created", "pool 'obs-gamma' created",
                            "pool 'obs-alpha' protected", "pool 'obs-gamma' destroyed"};
  std::size_t at = 0;
  for (const char* e : expected) {
    const std::size_t found = r.err.find(e, at);
    ASSERT_NE(found, std::string::npos) << "missing or out of order: " << e << "\n" << r.err;
    at = found;
  }
  std::istringstream lines(r.err);
  int count = 0;
  for (std::string line; std::getline(lines, line); ++count) EXPECT_EQ(line.rfind("pmalloc: pool '", 0), 0u) << line;
  EXPECT_EQ(count, 5) << r.err;
}

TEST(StatsEnvironment, VerboseCanBeTurnedOnWhileRunning) {
  const std::string err = capture_stderr([] {
    setenv("PMALLOC_VERBOSE", "1", 1);
    {
      pmalloc::Pool pool("obs-setenv-verbose");
      (void)pool.alloc(10);
      pool.protect();
    }
    unsetenv("PMALLOC_VERBOSE");
    pmalloc::Pool quiet("obs-setenv-quiet");
  });
  EXPECT_NE(err.find("pool 'obs-setenv-verbose' created"), std::string::npos) << err;
  EXPECT_NE(err.find("pool 'obs-setenv-verbose' protected"), std::string::npos) << err;
  EXPECT_NE(err.find("pool 'obs-setenv-verbose' destroyed"), std::string::npos) << err;
  EXPECT_EQ(err.find("obs-setenv-quiet"), std::string::npos) << err;
}

TEST(StatsEnvironment, StatsSetWhileRunningIsHonouredAtExit) {
  FILE* err = std::tmpfile();
  std::fflush(nullptr);
  const pid_t child = fork();
  if (child == 0) {
    dup2(fileno(err), 2);
    setenv("PMALLOC_STATS", "1", 1);
    static pmalloc::Pool* pool = new pmalloc::Pool("obs-setenv-stats");  // alive at exit
    (void)pool;
    std::exit(0);
  }
  int status = 0;
  waitpid(child, &status, 0);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  const std::string text = slurp(err);
  EXPECT_FALSE(table_row(text, "obs-setenv-stats").empty()) << text;
}

TEST(StatsEnvironment, CProgramPrintsToStdout) {
  const ChildResult table = run_child({}, "print-table");
  EXPECT_TRUE(exited_ok(table));
  EXPECT_FALSE(table_row(table.out, "obs-beta").empty()) << table.out;
  const ChildResult json = run_child({}, "print-json");
  EXPECT_NE(find_pool(parse_or_fail(json.out), "obs-alpha"), nullptr);
  EXPECT_EQ(json.err, "");
}

}  // namespace
