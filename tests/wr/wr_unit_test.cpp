// Writer internals that do not depend on the back end in use: the selection rule for
// every combination of available writers and forced names, the PKRU arithmetic, pkey
// detection and the clean fallback on this CPU (no protection keys), and the refusal
// message printed for a forced writer that cannot be had (checked in a child process).
#include <gtest/gtest.h>
#include <pmalloc/pmalloc.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>

#include "os/os.hpp"
#include "os/pkru.hpp"
#include "wr/writer.hpp"

namespace {

using pmalloc::internal::wr::Backend;
namespace wr = pmalloc::internal::wr;
namespace pkru = pmalloc::os::pkru;

struct Machine {
  bool pkey, procmem, alias;
};

bool machine_has(Backend b, void* context) {
  const auto* m = static_cast<const Machine*>(context);
  switch (b) {
    case Backend::pkey: return m->pkey;
    case Backend::procmem: return m->procmem;
    case Backend::alias: return m->alias;
    case Backend::mprotect: return true;
    case Backend::none: return false;
  }
  return false;
}

Backend pick(Machine m, const char* forced, std::string* message = nullptr) {
  char buffer[256];
  const Backend b = wr::select_backend(forced, machine_has, &m, buffer, sizeof buffer);
  if (message != nullptr) *message = buffer;
  return b;
}

TEST(WrSelect, BestAvailableFirst) {
  EXPECT_EQ(pick({true, true, true}, nullptr), Backend::pkey);
  EXPECT_EQ(pick({false, true, true}, nullptr), Backend::procmem);
  EXPECT_EQ(pick({false, false, true}, ""), Backend::alias);
  EXPECT_EQ(pick({false, false, false}, nullptr), Backend::mprotect);
}

TEST(WrSelect, ForcedAvailableWriterIsHonouredSilently) {
  std::string message;
  EXPECT_EQ(pick({true, true, true}, "mprotect", &message), Backend::mprotect);
  EXPECT_EQ(message, "");
  EXPECT_EQ(pick({true, true, true}, "alias", &message), Backend::alias);
  EXPECT_EQ(pick({false, true, false}, "procmem", &message), Backend::procmem);
  EXPECT_EQ(message, "");
}

TEST(WrSelect, ForcedUnavailableOrUnknownWriterIsRefusedWithAMessage) {
  std::string message;
  EXPECT_EQ(pick({false, true, true}, "pkey", &message), Backend::procmem);
  EXPECT_NE(message.find("PMALLOC_WR_BACKEND=pkey refused"), std::string::npos) << message;
  EXPECT_NE(message.find("'procmem'"), std::string::npos) << message;
  EXPECT_EQ(pick({false, false, false}, "alias", &message), Backend::mprotect);
  EXPECT_NE(message.find("not available"), std::string::npos) << message;
  EXPECT_EQ(pick({false, true, true}, "fast", &message), Backend::procmem);
  EXPECT_NE(message.find("unknown writer"), std::string::npos) << message;
  EXPECT_EQ(pick({false, true, true}, "PROCMEM", &message), Backend::procmem) << "names are exact";
  EXPECT_NE(message, "");
}

TEST(WrPkru, BitArithmetic) {
  // Linux's default PKRU: every key but 0 access-disabled.
  constexpr std::uint32_t kDefault = 0x55555554;
  static_assert(pkru::ad_bit(0) == 1u && pkru::wd_bit(0) == 2u);
  static_assert(pkru::ad_bit(15) == (1u << 30) && pkru::wd_bit(15) == (1u << 31));
  for (int key = 1; key < 16; ++key) {
    EXPECT_FALSE(pkru::may_read(kDefault, key)) << key;
    const std::uint32_t ro = pkru::deny_write(kDefault, key);
    EXPECT_TRUE(pkru::may_read(ro, key));
    EXPECT_FALSE(pkru::may_write(ro, key));
    const std::uint32_t rw = pkru::allow_write(ro, key);
    EXPECT_TRUE(pkru::may_write(rw, key));
    // Other keys are untouched.
    EXPECT_EQ(ro & ~(pkru::ad_bit(key) | pkru::wd_bit(key)), kDefault & ~(pkru::ad_bit(key) | pkru::wd_bit(key)));
    EXPECT_EQ(rw | pkru::wd_bit(key), ro);
    EXPECT_EQ(pkru::deny_write(rw, key), ro);
  }
  EXPECT_TRUE(pkru::may_write(kDefault, 0));
  EXPECT_EQ(pkru::allow_write(0xFFFFFFFFu, 3), 0xFFFFFF3Fu);
  EXPECT_EQ(pkru::deny_write(0u, 3), 0x80u);
}

bool cpuinfo_has_pku() {
  std::ifstream in("/proc/cpuinfo");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("flags", 0) == 0) return line.find(" pku") != std::string::npos && line.find(" ospke") != std::string::npos;
  }
  return false;
}

TEST(WrPkey, DetectionAgreesWithTheKernel) {
  EXPECT_EQ(pmalloc::os::cpu_has_pkeys(), cpuinfo_has_pku());
  if (!pmalloc::os::cpu_has_pkeys()) {
    EXPECT_FALSE(wr::backend_available(Backend::pkey));
    EXPECT_NE(std::string(wr::unavailable_reason(Backend::pkey)), "");
    EXPECT_EQ(wr::data_pkey(), -1) << "no key may be used without protection keys";
    EXPECT_NE(wr::backend(), Backend::pkey);
  }
}

TEST(WrPkey, PkeyMprotectRefusesBadArguments) {
  EXPECT_EQ(pmalloc::os::set_access_pkey(nullptr, 4096, pmalloc::os::Access::read, 1), EINVAL);
  int dummy = 0;
  EXPECT_EQ(pmalloc::os::set_access_pkey(&dummy, 4096, pmalloc::os::Access::read, 1), EINVAL);
}

TEST(WrBackend, RegionSetUpMatchesTheWriter) {
  EXPECT_EQ(wr::regions_shared(), wr::backend() == Backend::alias);
  EXPECT_EQ(wr::data_pkey() >= 0, wr::backend() == Backend::pkey);
  EXPECT_TRUE(wr::backend_available(Backend::mprotect));
  EXPECT_STREQ(pmalloc_wr_backend(), wr::backend_name(wr::backend()));
}

// Prints the writer this process got (used by the child processes below).
TEST(WrBackend, PrintChosen) { std::printf("chosen writer: %s\n", pmalloc_wr_backend()); }

std::string run_child(const std::string& env) {
  const std::string cmd = env + " /proc/" + std::to_string(getpid()) +
                          "/exe --gtest_filter=WrBackend.PrintChosen 2>&1";
  std::string out;
  if (FILE* f = popen(cmd.c_str(), "r")) {
    std::array<char, 512> buf{};
    while (std::fgets(buf.data(), buf.size(), f) != nullptr) out += buf.data();
    pclose(f);
  }
  return out;
}

TEST(WrBackend, RefusedForcedWriterFallsBackWithAClearMessage) {
  char message[256];
  const Backend automatic = wr::select_backend(
      nullptr, [](Backend b, void*) { return wr::backend_available(b); }, nullptr, message, sizeof message);
  const std::string expect_chosen = std::string("chosen writer: ") + wr::backend_name(automatic);
  for (const char* name : {"pkey", "nonsense"}) {
    if (std::string(name) == "pkey" && wr::backend_available(Backend::pkey)) continue;
    const std::string out = run_child(std::string("PMALLOC_WR_BACKEND=") + name);
    EXPECT_NE(out.find(std::string("pmalloc: PMALLOC_WR_BACKEND=") + name + " refused"), std::string::npos) << out;
    EXPECT_NE(out.find(expect_chosen), std::string::npos) << out;
  }
  const std::string forced = run_child("PMALLOC_WR_BACKEND=mprotect");
  EXPECT_NE(forced.find("chosen writer: mprotect"), std::string::npos) << forced;
  EXPECT_EQ(forced.find("refused"), std::string::npos) << forced;
}

}  // namespace
