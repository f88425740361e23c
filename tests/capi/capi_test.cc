// The C API (include/swiotlb.h), driven as a C program would drive it.
#include <gtest/gtest.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <nlohmann/json.hpp>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "swiotlb.h"

namespace {

std::uint64_t address_of(const void* p) {
  return reinterpret_cast<std::uintptr_t>(p);
}
unsigned char* pointer_to(std::uint64_t dma) {
  return reinterpret_cast<unsigned char*>(static_cast<std::uintptr_t>(dma));
}

// A tlb and one device on it, ended in order.
class CapiTest : public ::testing::Test {
 protected:
  void make(const char* param, const swiotlb_device_config* config = nullptr,
            const swiotlb_region* region = nullptr) {
    ASSERT_EQ(swiotlb_tlb_create(param, region, &tlb_), SWIOTLB_OK) << swiotlb_last_error();
    swiotlb_device_config defaults;
    ASSERT_EQ(swiotlb_device_config_init(&defaults), SWIOTLB_OK);
    ASSERT_EQ(swiotlb_device_create(tlb_, config ? config : &defaults, &dev_), SWIOTLB_OK)
        << swiotlb_last_error();
  }
  void TearDown() override {
    EXPECT_EQ(swiotlb_device_destroy(dev_), SWIOTLB_OK) << swiotlb_last_error();
    EXPECT_EQ(swiotlb_tlb_destroy(tlb_), SWIOTLB_OK) << swiotlb_last_error();
  }
  std::string stats(swiotlb_stats_format format) {
    std::size_t length = 0;
    EXPECT_EQ(swiotlb_tlb_stats(tlb_, format, nullptr, 0, &length), SWIOTLB_E_BUFFER_TOO_SMALL);
    std::string text(length + 1, '\0');
    EXPECT_EQ(swiotlb_tlb_stats(tlb_, format, text.data(), text.size(), &length), SWIOTLB_OK)
        << swiotlb_last_error();
    text.resize(length);
    return text;
  }

  swiotlb_tlb* tlb_ = nullptr;
  swiotlb_device* dev_ = nullptr;
};

TEST(CapiStatus, NamesAreDistinctAndVersionMatchesTheHeaders) {
  std::set<std::string> names;
  for (int s = SWIOTLB_OK; s <= SWIOTLB_E_BUFFER_TOO_SMALL; ++s) {
    names.insert(swiotlb_status_name(static_cast<swiotlb_status>(s)));
  }
  EXPECT_EQ(names.size(), static_cast<std::size_t>(SWIOTLB_E_BUFFER_TOO_SMALL) + 1);
  EXPECT_EQ(names.count("unknown"), 0u);
  EXPECT_STREQ(swiotlb_version(), SWIOTLB_VERSION_STRING);
}

TEST(CapiTlb, ABadSwiotlbStringIsAParseErrorWithAMessageAndNoHandle) {
  swiotlb_tlb* tlb = nullptr;
  EXPECT_EQ(swiotlb_tlb_create("swiotlb=lots", nullptr, &tlb), SWIOTLB_E_PARSE);
  EXPECT_EQ(tlb, nullptr);
  EXPECT_NE(std::string(swiotlb_last_error()).find("lots"), std::string::npos)
      << swiotlb_last_error();
  EXPECT_EQ(swiotlb_tlb_create("128", nullptr, nullptr), SWIOTLB_E_INVALID_ARGUMENT);
  EXPECT_NE(std::string(swiotlb_last_error()).find("out"), std::string::npos);
  swiotlb_region file{.kind = SWIOTLB_REGION_FILE};
  EXPECT_EQ(swiotlb_tlb_create("128", &file, &tlb), SWIOTLB_E_INVALID_ARGUMENT);
  EXPECT_EQ(tlb, nullptr);
  EXPECT_EQ(swiotlb_tlb_destroy(nullptr), SWIOTLB_OK);
}

TEST(CapiTlb, TheLastErrorIsPerThread) {
  swiotlb_tlb* tlb = nullptr;
  ASSERT_EQ(swiotlb_tlb_create("swiotlb=lots", nullptr, &tlb), SWIOTLB_E_PARSE);
  const std::string mine = swiotlb_last_error();
  std::string theirs = "unset";
  std::thread other([&] {
    theirs = swiotlb_last_error();
    swiotlb_iova_domain* domain = nullptr;
    EXPECT_EQ(swiotlb_iova_domain_create(3000, 1, 1, &domain), SWIOTLB_E_INVALID_ARGUMENT);
  });
  other.join();
  EXPECT_EQ(theirs, "");
  EXPECT_EQ(swiotlb_last_error(), mine);
}

TEST(CapiTlb, MemfdFileAndFixedAddressWindows) {
  swiotlb_tlb* tlb = nullptr;
  int fd = -1;
  ASSERT_EQ(swiotlb_tlb_create("128", nullptr, &tlb), SWIOTLB_OK) << swiotlb_last_error();
  EXPECT_EQ(swiotlb_tlb_region_fd(tlb, &fd), SWIOTLB_E_INVALID_ARGUMENT);
  ASSERT_EQ(swiotlb_tlb_destroy(tlb), SWIOTLB_OK);

  swiotlb_region memfd{.kind = SWIOTLB_REGION_MEMFD};
  ASSERT_EQ(swiotlb_tlb_create("128", &memfd, &tlb), SWIOTLB_OK) << swiotlb_last_error();
  ASSERT_EQ(swiotlb_tlb_region_fd(tlb, &fd), SWIOTLB_OK);
  EXPECT_GE(fd, 0);
  ASSERT_EQ(swiotlb_tlb_destroy(tlb), SWIOTLB_OK);

  std::string path = ::testing::TempDir() + "capi_window_XXXXXX";
  const int tmp = mkstemp(path.data());
  ASSERT_GE(tmp, 0);
  close(tmp);
  swiotlb_region file{.kind = SWIOTLB_REGION_FILE, .path = path.c_str()};
  ASSERT_EQ(swiotlb_tlb_create("128", &file, &tlb), SWIOTLB_OK) << swiotlb_last_error();
  ASSERT_EQ(swiotlb_tlb_region_fd(tlb, &fd), SWIOTLB_OK);
  EXPECT_GE(lseek(fd, 0, SEEK_END), 128 * 2048);
  ASSERT_EQ(swiotlb_tlb_destroy(tlb), SWIOTLB_OK);
  unlink(path.c_str());

  // A free address: the low end of a large hole, which the mappings made
  // meanwhile (filled top-down) leave alone.
  const std::size_t bytes = 128 * 2048;
  const std::size_t hole = 64 << 20;
  void* probe = mmap(nullptr, hole, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(probe, MAP_FAILED);
  munmap(probe, hole);
  probe = static_cast<char*>(probe) + (1 << 20);
  swiotlb_region fixed{.kind = SWIOTLB_REGION_FIXED, .address = address_of(probe)};
  ASSERT_EQ(swiotlb_tlb_create("128", &fixed, &tlb), SWIOTLB_OK) << swiotlb_last_error();
  std::uint64_t start = 0;
  std::uint64_t end = 0;
  ASSERT_EQ(swiotlb_tlb_window(tlb, &start, &end), SWIOTLB_OK);
  EXPECT_EQ(start, address_of(probe));
  EXPECT_GE(end - start, bytes);  // swiotlb= rounds small pools up
  // The same address again is taken: a system error naming it, no handle.
  swiotlb_tlb* second = nullptr;
  EXPECT_EQ(swiotlb_tlb_create("128", &fixed, &second), SWIOTLB_E_SYSTEM);
  EXPECT_EQ(second, nullptr);
  EXPECT_STRNE(swiotlb_last_error(), "");
  ASSERT_EQ(swiotlb_tlb_destroy(tlb), SWIOTLB_OK);

  swiotlb_region no_address{.kind = SWIOTLB_REGION_FIXED};
  EXPECT_EQ(swiotlb_tlb_create("128", &no_address, &tlb), SWIOTLB_E_INVALID_ARGUMENT);
}

TEST_F(CapiTest, ABouncedMappingRoundTripsAndMisuseIsRefused) {
  make("swiotlb=1024,force");
  std::vector<unsigned char> buffer(3000, 0x11);
  std::uint64_t dma = 0;
  ASSERT_EQ(
      swiotlb_map_single(dev_, buffer.data(), buffer.size(), SWIOTLB_DMA_BIDIRECTIONAL, 0, &dma),
      SWIOTLB_OK)
      << swiotlb_last_error();
  ASSERT_NE(dma, address_of(buffer.data()));
  EXPECT_EQ(pointer_to(dma)[2999], 0x11);  // filled at map
  std::memset(pointer_to(dma), 0x22, buffer.size());

  // The device wrote; a sync brings part of it back.
  ASSERT_EQ(swiotlb_sync_single_for_cpu(dev_, dma + 1000, 10, SWIOTLB_DMA_BIDIRECTIONAL),
            SWIOTLB_OK);
  EXPECT_EQ(buffer[1000], 0x22);
  EXPECT_EQ(buffer[999], 0x11);
  buffer[0] = 0x33;
  ASSERT_EQ(swiotlb_sync_single_for_device(dev_, dma, 1, SWIOTLB_DMA_BIDIRECTIONAL), SWIOTLB_OK);
  EXPECT_EQ(pointer_to(dma)[0], 0x33);

  // Misuse: a wrong size, a wrong direction, a bad direction or attribute.
  EXPECT_EQ(swiotlb_unmap_single(dev_, dma, 64, SWIOTLB_DMA_BIDIRECTIONAL, 0),
            SWIOTLB_E_MAPPING_MISMATCH);
  EXPECT_EQ(swiotlb_unmap_single(dev_, dma, buffer.size(), SWIOTLB_DMA_TO_DEVICE, 0),
            SWIOTLB_E_MAPPING_MISMATCH);
  EXPECT_EQ(swiotlb_unmap_single(dev_, dma, buffer.size(), static_cast<swiotlb_direction>(3), 0),
            SWIOTLB_E_INVALID_ARGUMENT);
  EXPECT_EQ(swiotlb_unmap_single(dev_, dma, buffer.size(), SWIOTLB_DMA_BIDIRECTIONAL, 1u << 30),
            SWIOTLB_E_INVALID_ARGUMENT);

  // A live mapping keeps the device, and the device keeps the tlb.
  EXPECT_EQ(swiotlb_device_destroy(dev_), SWIOTLB_E_BUSY);
  EXPECT_EQ(swiotlb_tlb_destroy(tlb_), SWIOTLB_E_BUSY);

  ASSERT_EQ(swiotlb_unmap_single(dev_, dma, buffer.size(), SWIOTLB_DMA_BIDIRECTIONAL, 0),
            SWIOTLB_OK);
  EXPECT_EQ(buffer[2999], 0x22);
  EXPECT_EQ(buffer[0], 0x33);
  EXPECT_EQ(swiotlb_unmap_single(dev_, dma, buffer.size(), SWIOTLB_DMA_BIDIRECTIONAL, 0),
            SWIOTLB_E_NOT_MAPPED);
  EXPECT_EQ(swiotlb_map_single(dev_, buffer.data(), 0, SWIOTLB_DMA_TO_DEVICE, 0, &dma),
            SWIOTLB_E_INVALID_ARGUMENT);
}

TEST_F(CapiTest, SkipCpuSyncLeavesTheBufferAlone) {
  make("swiotlb=1024,force");
  unsigned char byte = 1;
  std::uint64_t dma = 0;
  ASSERT_EQ(swiotlb_map_single(dev_, &byte, 1, SWIOTLB_DMA_FROM_DEVICE, 0, &dma), SWIOTLB_OK);
  *pointer_to(dma) = 9;
  ASSERT_EQ(swiotlb_unmap_single(dev_, dma, 1, SWIOTLB_DMA_FROM_DEVICE, SWIOTLB_ATTR_SKIP_CPU_SYNC),
            SWIOTLB_OK);
  EXPECT_EQ(byte, 1);
}

TEST_F(CapiTest, AFullPoolIsAnErrorValue) {
  make("swiotlb=128,force");
  std::vector<unsigned char> big(128 * 1024);
  std::vector<std::uint64_t> mapped;
  swiotlb_status status = SWIOTLB_OK;
  std::uint64_t dma = 0;
  while (mapped.size() < 1000) {
    status = swiotlb_map_single(dev_, big.data(), big.size(), SWIOTLB_DMA_TO_DEVICE,
                                SWIOTLB_ATTR_NO_WARN, &dma);
    if (status != SWIOTLB_OK) {
      break;
    }
    mapped.push_back(dma);
  }
  EXPECT_EQ(status, SWIOTLB_E_POOL_FULL);
  EXPECT_GE(mapped.size(), 1u);
  EXPECT_STRNE(swiotlb_last_error(), "");
  for (std::uint64_t m : mapped) {
    ASSERT_EQ(swiotlb_unmap_single(dev_, m, big.size(), SWIOTLB_DMA_TO_DEVICE, 0), SWIOTLB_OK);
  }
}

TEST_F(CapiTest, ScatterGatherIsAllOrNothing) {
  swiotlb_device_config config;
  swiotlb_device_config_init(&config);
  config.max_segment_size = 4096;
  make("swiotlb=1024,force", &config);
  std::vector<unsigned char> a(1000, 1);
  std::vector<unsigned char> b(4096, 2);
  std::vector<unsigned char> too_long(5000, 3);
  swiotlb_sg_entry sg[3] = {
      {a.data(), 1000, 0, 0}, {b.data(), 4096, 0, 0}, {too_long.data(), 5000, 0, 0}};
  EXPECT_EQ(swiotlb_map_sg(dev_, sg, 3, SWIOTLB_DMA_TO_DEVICE, 0), SWIOTLB_E_INVALID_ARGUMENT);
  EXPECT_EQ(sg[0].dma_address, 0u);  // nothing filled in
  EXPECT_NE(std::string(swiotlb_last_error()).find("4096"), std::string::npos)
      << swiotlb_last_error();

  ASSERT_EQ(swiotlb_map_sg(dev_, sg, 2, SWIOTLB_DMA_BIDIRECTIONAL, 0), SWIOTLB_OK);
  EXPECT_EQ(sg[0].dma_length, 1000u);
  EXPECT_EQ(pointer_to(sg[1].dma_address)[4095], 2);
  pointer_to(sg[0].dma_address)[0] = 7;
  ASSERT_EQ(swiotlb_sync_sg_for_cpu(dev_, sg, 2, SWIOTLB_DMA_BIDIRECTIONAL), SWIOTLB_OK);
  EXPECT_EQ(a[0], 7);
  b[0] = 8;
  ASSERT_EQ(swiotlb_sync_sg_for_device(dev_, sg, 2, SWIOTLB_DMA_BIDIRECTIONAL), SWIOTLB_OK);
  EXPECT_EQ(pointer_to(sg[1].dma_address)[0], 8);
  ASSERT_EQ(swiotlb_unmap_sg(dev_, sg, 2, SWIOTLB_DMA_BIDIRECTIONAL, 0), SWIOTLB_OK);

  // A long list goes through the heap path, with the same results.
  std::vector<unsigned char> bytes(40, 5);
  std::vector<swiotlb_sg_entry> many(40);
  for (std::size_t i = 0; i < many.size(); ++i) {
    many[i] = {&bytes[i], 1, 0, 0};
  }
  ASSERT_EQ(swiotlb_map_sg(dev_, many.data(), many.size(), SWIOTLB_DMA_FROM_DEVICE, 0), SWIOTLB_OK);
  for (auto& e : many) {
    *pointer_to(e.dma_address) = 6;
  }
  ASSERT_EQ(swiotlb_unmap_sg(dev_, many.data(), many.size(), SWIOTLB_DMA_FROM_DEVICE, 0),
            SWIOTLB_OK);
  EXPECT_EQ(bytes[39], 6);
}

// A device that reaches normal memory gets its coherent memory there, as
// the kernel's dma_direct_alloc gives it (docs/dma-behaviour.md); the pool
// serves only devices that cannot.
TEST_F(CapiTest, CoherentMemoryIsZeroedAndFreedOnce) {
  make("1024");
  swiotlb_coherent buffer{};
  ASSERT_EQ(swiotlb_alloc_coherent(dev_, 5000, &buffer), SWIOTLB_OK) << swiotlb_last_error();
  EXPECT_EQ(buffer.size % 4096, 0u);
  EXPECT_GE(buffer.size, 5000u);
  const auto* bytes = static_cast<const unsigned char*>(buffer.cpu_addr);
  for (std::uint64_t i = 0; i < buffer.size; ++i) {
    ASSERT_EQ(bytes[i], 0) << i;
  }
  EXPECT_EQ(swiotlb_device_destroy(dev_), SWIOTLB_E_BUSY);
  ASSERT_EQ(swiotlb_free_coherent(dev_, &buffer), SWIOTLB_OK);
  EXPECT_NE(swiotlb_free_coherent(dev_, &buffer), SWIOTLB_OK);
}

TEST_F(CapiTest, AWindowOnlyDeviceGetsCoherentMemoryInTheWindowAndBouncesEverything) {
  swiotlb_device_config config;
  ASSERT_EQ(swiotlb_device_config_init(&config), SWIOTLB_OK);
  config.window_only = 1;
  make("1024", &config);
  std::uint64_t start = 0;
  std::uint64_t end = 0;
  ASSERT_EQ(swiotlb_tlb_window(tlb_, &start, &end), SWIOTLB_OK);
  swiotlb_coherent buffer{};
  ASSERT_EQ(swiotlb_alloc_coherent(dev_, 5000, &buffer), SWIOTLB_OK) << swiotlb_last_error();
  EXPECT_GE(buffer.dma_handle, start);
  EXPECT_LT(buffer.dma_handle, end);
  // A buffer of this process, which the device cannot see, is bounced.
  std::vector<unsigned char> packet(1500, 7);
  std::uint64_t dma = 0;
  ASSERT_EQ(swiotlb_map_single(dev_, packet.data(), packet.size(), SWIOTLB_DMA_TO_DEVICE, 0, &dma),
            SWIOTLB_OK)
      << swiotlb_last_error();
  EXPECT_GE(dma, start);
  EXPECT_LT(dma, end);
  EXPECT_EQ(*pointer_to(dma), 7);
  ASSERT_EQ(swiotlb_unmap_single(dev_, dma, packet.size(), SWIOTLB_DMA_TO_DEVICE, 0), SWIOTLB_OK);
  ASSERT_EQ(swiotlb_free_coherent(dev_, &buffer), SWIOTLB_OK);
}

TEST_F(CapiTest, ANonCoherentDeviceGetsItsCacheHookCalled) {
  struct Calls {
    int for_device = 0;
    int for_cpu = 0;
  } calls;
  swiotlb_device_config config;
  swiotlb_device_config_init(&config);
  config.coherent = 0;
  config.cache_context = &calls;
  config.cache_hook = [](void* context, swiotlb_cache_op op, std::uint64_t, std::uint64_t,
                         swiotlb_direction) {
    auto* c = static_cast<Calls*>(context);
    (op == SWIOTLB_CACHE_FOR_DEVICE ? c->for_device : c->for_cpu)++;
  };
  make("1024", &config);
  unsigned char byte = 0;
  std::uint64_t dma = 0;
  ASSERT_EQ(swiotlb_map_single(dev_, &byte, 1, SWIOTLB_DMA_BIDIRECTIONAL, 0, &dma), SWIOTLB_OK);
  ASSERT_EQ(swiotlb_unmap_single(dev_, dma, 1, SWIOTLB_DMA_BIDIRECTIONAL, 0), SWIOTLB_OK);
  EXPECT_GE(calls.for_device, 1);
  EXPECT_GE(calls.for_cpu, 1);
}

TEST_F(CapiTest, DeviceConstraintsAreCheckedAtCreation) {
  make("1024");
  swiotlb_device_config config;
  swiotlb_device_config_init(&config);
  config.seg_boundary_mask = 0x1234;  // not 2^n - 1
  swiotlb_device* bad = nullptr;
  EXPECT_EQ(swiotlb_device_create(tlb_, &config, &bad), SWIOTLB_E_INVALID_ARGUMENT);
  EXPECT_EQ(bad, nullptr);
  std::uint64_t size = 0;
  ASSERT_EQ(swiotlb_max_mapping_size(dev_, &size), SWIOTLB_OK);
  EXPECT_GT(size, 0u);
}

TEST_F(CapiTest, StatsInThreeFormats) {
  make("swiotlb=1024,force");
  std::vector<unsigned char> buffer(4096);
  std::uint64_t dma = 0;
  ASSERT_EQ(swiotlb_map_single(dev_, buffer.data(), buffer.size(), SWIOTLB_DMA_TO_DEVICE, 0, &dma),
            SWIOTLB_OK);

  const std::string debugfs = stats(SWIOTLB_STATS_DEBUGFS);
  EXPECT_NE(debugfs.find("io_tlb_nslabs: 1024\n"), std::string::npos) << debugfs;
  EXPECT_NE(debugfs.find("io_tlb_used: 2\n"), std::string::npos) << debugfs;

  const nlohmann::json json = nlohmann::json::parse(stats(SWIOTLB_STATS_JSON));
  EXPECT_TRUE(json.is_object());

  // Every line is a comment or a sample; every sample's family was typed
  // before it; the pool's figures are there with its label.
  const std::string prom = stats(SWIOTLB_STATS_PROMETHEUS);
  const std::regex sample(R"(([a-z_]+)(\{pool="[a-z0-9_]+"\})? [0-9]+)");
  const std::regex type(R"(# TYPE ([a-z_]+) (gauge|counter))");
  std::set<std::string> typed;
  std::istringstream lines(prom);
  std::string line;
  int samples = 0;
  while (std::getline(lines, line)) {
    std::smatch m;
    if (std::regex_match(line, m, type)) {
      typed.insert(m[1]);
    } else if (std::regex_match(line, m, sample)) {
      EXPECT_EQ(typed.count(m[1]), 1u) << line;
      ++samples;
    } else {
      EXPECT_EQ(line.rfind("# HELP ", 0), 0u) << line;
    }
  }
  EXPECT_GE(samples, 9);
  EXPECT_NE(prom.find("swiotlb_pool_slots{pool=\"low\"} 1024\n"), std::string::npos) << prom;
  EXPECT_NE(prom.find("swiotlb_pool_used_slots{pool=\"low\"} 2\n"), std::string::npos) << prom;
  EXPECT_NE(prom.find("swiotlb_pool_maps_total{pool=\"low\"} 1\n"), std::string::npos) << prom;

  // A buffer of exactly the length has no room for the NUL.
  std::size_t length = 0;
  std::string exact(debugfs.size(), 'x');
  EXPECT_EQ(swiotlb_tlb_stats(tlb_, SWIOTLB_STATS_DEBUGFS, exact.data(), exact.size(), &length),
            SWIOTLB_E_BUFFER_TOO_SMALL);
  EXPECT_EQ(length, debugfs.size());
  EXPECT_EQ(exact, std::string(debugfs.size(), 'x'));
  EXPECT_EQ(swiotlb_tlb_stats(tlb_, static_cast<swiotlb_stats_format>(3), nullptr, 0, &length),
            SWIOTLB_E_INVALID_ARGUMENT);
  ASSERT_EQ(swiotlb_unmap_single(dev_, dma, buffer.size(), SWIOTLB_DMA_TO_DEVICE, 0), SWIOTLB_OK);
}

TEST(CapiIova, AllocFreeAndReservedRegions) {
  swiotlb_iova_domain* domain = nullptr;
  ASSERT_EQ(swiotlb_iova_domain_create(4096, 1, 2, &domain), SWIOTLB_OK) << swiotlb_last_error();
  std::size_t count = 99;
  EXPECT_EQ(swiotlb_iova_reserve_regions(domain, "0xfee00000 0xfeefffff msi\nnonsense\n", &count),
            SWIOTLB_E_PARSE);
  EXPECT_EQ(count, 99u);
  ASSERT_EQ(swiotlb_iova_reserve_regions(domain,
                                         "0x00000000fee00000 0x00000000feefffff msi\n"
                                         "0x0000000000000000 0x0000000000ffffff direct-relaxable\n",
                                         &count),
            SWIOTLB_OK)
      << swiotlb_last_error();
  EXPECT_EQ(count, 1u);

  // Top-down below the limit, skipping the MSI window.
  const std::uint64_t limit = 0xfeeff;
  std::uint64_t lo = 0;
  std::uint64_t hi = 0;
  ASSERT_EQ(swiotlb_iova_alloc(domain, 16, limit, 1, &lo, &hi), SWIOTLB_OK);
  EXPECT_LT(hi, 0xfee00u);
  EXPECT_EQ(hi - lo + 1, 16u);
  EXPECT_EQ(swiotlb_iova_reserve(domain, lo, hi), SWIOTLB_E_BUSY);
  ASSERT_EQ(swiotlb_iova_free(domain, lo), SWIOTLB_OK);
  EXPECT_EQ(swiotlb_iova_free(domain, lo), SWIOTLB_E_NOT_MAPPED);
  EXPECT_EQ(swiotlb_iova_alloc(domain, 0, limit, 0, &lo, &hi), SWIOTLB_E_INVALID_ARGUMENT);

  std::uint64_t pfn = 0;
  ASSERT_EQ(swiotlb_iova_alloc_fast(domain, 1, 3, limit, 1, &pfn), SWIOTLB_OK);
  EXPECT_EQ(swiotlb_iova_free_fast(domain, 1, pfn, 64), SWIOTLB_E_MAPPING_MISMATCH);
  EXPECT_EQ(swiotlb_iova_alloc_fast(domain, 2, 3, limit, 1, &pfn), SWIOTLB_E_INVALID_ARGUMENT);
  ASSERT_EQ(swiotlb_iova_free_fast(domain, 1, pfn, 3), SWIOTLB_OK);
  EXPECT_EQ(swiotlb_iova_domain_destroy(domain), SWIOTLB_OK);
  EXPECT_EQ(swiotlb_iova_domain_destroy(nullptr), SWIOTLB_OK);
}

TEST(CapiNullHandles, EveryCallRefusesNullWithAMessage) {
  std::uint64_t value = 0;
  EXPECT_EQ(swiotlb_device_config_init(nullptr), SWIOTLB_E_INVALID_ARGUMENT);
  EXPECT_EQ(swiotlb_device_create(nullptr, nullptr, nullptr), SWIOTLB_E_INVALID_ARGUMENT);
  EXPECT_EQ(swiotlb_map_single(nullptr, &value, 1, SWIOTLB_DMA_TO_DEVICE, 0, &value),
            SWIOTLB_E_INVALID_ARGUMENT);
  EXPECT_NE(std::string(swiotlb_last_error()).find("dev is NULL"), std::string::npos);
  EXPECT_EQ(swiotlb_unmap_single(nullptr, 0, 1, SWIOTLB_DMA_TO_DEVICE, 0),
            SWIOTLB_E_INVALID_ARGUMENT);
  EXPECT_EQ(swiotlb_map_sg(nullptr, nullptr, 0, SWIOTLB_DMA_TO_DEVICE, 0),
            SWIOTLB_E_INVALID_ARGUMENT);
  EXPECT_EQ(swiotlb_alloc_coherent(nullptr, 1, nullptr), SWIOTLB_E_INVALID_ARGUMENT);
  EXPECT_EQ(swiotlb_tlb_stats(nullptr, SWIOTLB_STATS_JSON, nullptr, 0, nullptr),
            SWIOTLB_E_INVALID_ARGUMENT);
  EXPECT_EQ(swiotlb_tlb_window(nullptr, &value, &value), SWIOTLB_E_INVALID_ARGUMENT);
  EXPECT_EQ(swiotlb_iova_alloc(nullptr, 1, 1, 0, &value, &value), SWIOTLB_E_INVALID_ARGUMENT);
  EXPECT_EQ(swiotlb_iova_reserve_regions(nullptr, "", nullptr), SWIOTLB_E_INVALID_ARGUMENT);
}

}  // namespace
