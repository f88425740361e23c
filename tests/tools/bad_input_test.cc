// A corpus of bad and edge inputs run through the built `swiotlb` as a
// hostile but fair user would give them: each case names the command line,
// the exit code it must end with (README.md, "Exit codes") and words the
// error must contain, so that the message names the bad part. Every case
// runs under a time bound: a hang or a death by signal fails it.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;

struct CliResult {
  int status = -1;  // the exit code, -1 when killed by a signal
  std::string err;  // standard error
  std::string out;  // standard output
};

// Files the cases name as @NAME@: written once for the whole suite.
class Corpus {
 public:
  static Corpus& get() {
    static Corpus corpus;
    return corpus;
  }
  const fs::path& dir() const { return dir_; }

 private:
  Corpus() {
    std::string pattern = (fs::temp_directory_path() / "swiotlb-bad-input-XXXXXX").string();
    dir_ = ::mkdtemp(pattern.data());
    const std::string header =
        "# swiotlb-trace v1\n"
        "# pool default start=0x79b31000 nslabs=8192 nareas=1\n"
        "# device d0 min_align_mask=0xfff seg_boundary_mask=0xffffffff name=nvme\n";
    const std::string events =
        "map - 0 d0 0x101ab1000 4096 4096 0x0 2 0x0 0x79b31000\n"
        "unmap - 0 d0 0x79b31000 4096 2 0x20\n";
    write("good.trace", header + events);
    write("crlf.trace", crlf(header + events));
    write("cr_only.trace", cr_only(header + events));
    write("empty.trace", "");
    write("no_magic.trace", events);
    write("v2.trace", "# swiotlb-trace v2\n" + events);
    write("long_line.trace",
          header + "# " + std::string(std::size_t{2} << 20, 'x') + "\n" + events);
    write("long_event.trace", header + "map - 0 d0 0x1000 4096 4096 0x0 2 0x0 " +
                                  std::string(std::size_t{2} << 20, '1') + "\n");
    write("long_field.trace",
          header + "map - 0 d0 0x" + std::string(100000, 'z') + " 4096 4096 0x0 2 0x0 -\n");
    write("unknown_op.trace", header + "frobnicate - 0 d0 0x1000 4096\n");
    write("unknown_dev.trace", header + "map - 0 nodev 0x1000 4096 4096 0x0 2 0x0 -\n");
    write("bad_number.trace", header + "map - 0 d0 0x1000 4o96 4096 0x0 2 0x0 -\n");
    write("bad_dir.trace", header + "map - 0 d0 0x1000 4096 4096 0x0 7 0x0 -\n");
    write("extra_field.trace", header + "unmap - 0 d0 0x79b31000 4096 2 0x20 extra\n");
    write("huge_map.trace", header +
                                "map - 0 d0 0x1000 9223372036854775808 9223372036854775808 "
                                "0x0 2 0x0 -\n");
    write("map_2_43.trace", header + "map - 0 d0 0x1000 8796093024256 8796093024256 0x0 2 0x0 -\n");
    write("huge_pool.trace",
          "# swiotlb-trace v1\n"
          "# pool default start=0x0 nslabs=2147483648 nareas=1\n"
          "# device d0 min_align_mask=0x0 seg_boundary_mask=0xffffffff\n" +
              events);
    write("wrap_pool.trace",
          "# swiotlb-trace v1\n"
          "# pool default start=0xfffffffffffff000 nslabs=8192 nareas=1\n"
          "# device d0 min_align_mask=0x0 seg_boundary_mask=0xffffffff\n" +
              events);
    write("align_ones.trace",
          "# swiotlb-trace v1\n"
          "# pool default start=0x79b31000 nslabs=8192 nareas=1\n"
          "# device d0 min_align_mask=0xffffffffffffffff "
          "seg_boundary_mask=0xffffffff\n"
          "map - 0 d0 0x101ab1000 4096 4096 0x0 2 0x0 -\n"
          "map - 0 d0 0x101ab1000 4096 4096 0x0 2 0x0 -\n");
    write("no_pool.trace",
          "# swiotlb-trace v1\n"
          "# device d0 min_align_mask=0xfff seg_boundary_mask=0xffffffff\n" +
              events);
    write("pool_nareas0.trace",
          "# swiotlb-trace v1\n"
          "# pool default start=0x0 nslabs=8192 nareas=0\n");
    const std::string iova_header =
        "# swiotlb-iova-trace v1\n"
        "# domain 0 granule=4096 start_pfn=0x1\n";
    write("good.iova", iova_header + "alloc 0 0 1 0xfffff 0 0xfffff\nfree 0 0 0xfffff 1\n");
    write("crlf.iova", crlf(iova_header + "alloc 0 0 1 0xfffff 0 0xfffff\n"));
    write("cr_only.iova", cr_only(iova_header + "alloc 0 0 1 0xfffff 0 0xfffff\n"));
    write("empty.iova", "");
    write("cpu_2_31.iova", iova_header + "alloc 2147483648 0 1 0xfffff 0 0xfffff\n");
    write("cpu_888880.iova", iova_header + "alloc 888880 0 1 0xfffff 0 0xfffff\n");
    write("cpu_free.iova", iova_header + "free 100000 0 0xfffff 1\n");
    write("cpu_2_32.iova", iova_header + "alloc 4294967296 0 1 0xfffff 0 0xfffff\n");
    write("long_line.iova", iova_header + "# " + std::string(std::size_t{2} << 20, 'x') + "\n");
    write("long_field.iova",
          iova_header + "alloc 0 0 " + std::string(100000, '9') + "z 0xfffff 0 fail\n");
    write("bad_version.iova", "# swiotlb-iova-trace v9\n");
    write("unknown_op.iova", iova_header + "frob 0 0 1\n");
    write("undeclared.iova", "# swiotlb-iova-trace v1\nalloc 0 7 1 0xfffff 0 fail\n");
    write("bad_granule.iova", "# swiotlb-iova-trace v1\n# domain 0 granule=3000 start_pfn=0x1\n");
    write("twice.iova", iova_header + "# domain 0 granule=4096 start_pfn=0x1\n");
    write("flush.iova", iova_header + "alloc 0 0 1 0xfffff 2 fail\n");
    write("fields.iova", iova_header + "alloc 0 0 1\n");
    write("reserve.iova", iova_header + "reserve 0 0x10 0x1\n");
    fs::create_directory(dir_ / "a_directory");
  }
  ~Corpus() {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  static std::string crlf(const std::string& text) {
    std::string out;
    for (char c : text) {
      out += c == '\n' ? std::string("\r\n") : std::string(1, c);
    }
    return out;
  }
  static std::string cr_only(std::string text) {
    for (char& c : text) {
      c = c == '\n' ? '\r' : c;
    }
    return text;
  }
  void write(const std::string& name, const std::string& text) {
    std::ofstream(dir_ / name, std::ios::binary) << text;
  }

  fs::path dir_;
};

// Replaces @NAME@ with the corpus file's path.
std::string expand(std::string args) {
  for (std::size_t at = args.find('@'); at != std::string::npos; at = args.find('@')) {
    const std::size_t end = args.find('@', at + 1);
    const std::string name = args.substr(at + 1, end - at - 1);
    args.replace(at, end - at + 1, "'" + (Corpus::get().dir() / name).string() + "'");
  }
  return args;
}

std::string slurp(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Runs `swiotlb <args>` through the shell with a time bound; `input`, when
// given, is piped to its standard input.
CliResult run(const std::string& args, const std::string& input = "") {
  static int counter = 0;
  const fs::path out = Corpus::get().dir() / ("out." + std::to_string(++counter));
  const fs::path err = Corpus::get().dir() / ("err." + std::to_string(counter));
  std::string command = "timeout -s KILL 120 '" + std::string(SWIOTLB_CLI) + "' " + expand(args) +
                        " >'" + out.string() + "' 2>'" + err.string() + "'";
  if (!input.empty()) {
    command = "cat " + expand(input) + " | " + command;
  }
  const int raw = std::system(command.c_str());
  CliResult result;
  result.status = WIFEXITED(raw) ? WEXITSTATUS(raw) : -1;
  result.out = slurp(out);
  result.err = slurp(err);
  return result;
}

struct BadInput {
  std::string args;
  int exit_code;
  std::vector<std::string> says;  // each must appear in standard error
};

void PrintTo(const BadInput& c, std::ostream* os) {
  *os << c.args.substr(0, 100) << (c.args.size() > 100 ? "..." : "");
}

class BadInputTest : public ::testing::TestWithParam<BadInput> {};

TEST_P(BadInputTest, ExitsWithItsCodeAndNamesTheBadPart) {
  const BadInput& c = GetParam();
  const CliResult r = run(c.args);
  EXPECT_EQ(r.status, c.exit_code)
      << c.args.substr(0, 100) << "\nstderr: " << r.err.substr(0, 2000);
  for (const std::string& word : c.says) {
    EXPECT_THAT(r.err, ::testing::HasSubstr(word)) << c.args.substr(0, 100);
  }
  // An error quotes a short prefix of the input, never a whole field.
  EXPECT_LT(r.err.size(), 4096u) << c.args.substr(0, 100);
  if (c.exit_code == 2 || c.exit_code == 3) {
    EXPECT_THAT(r.err, ::testing::HasSubstr("rror")) << c.args.substr(0, 100);
  }
}

const std::string kLong2k(2000, 'a');
const std::string kNested = std::string(5000, '(') + "map" + std::string(5000, ')');
const std::string kLongWord(100000, 'q');
const std::string kLongDigits(100000, '7');
const std::string kNestedShort = std::string(400, '(') + "map" + std::string(400, ')');

// clang-format off
const BadInput kCases[] = {
    // Usage.
    {"", 2, {"subcommand"}},
    {"frob", 2, {"frob"}},
    {"info --frob", 2, {"--frob"}},
    {"info --cpus", 2, {"--cpus"}},
    {"size", 2, {"trace"}},
    // info: CPU counts and swiotlb= values.
    {"info --cpus 4294967296", 2, {"--cpus", "4294967296"}},
    {"info --cpus 2147483649", 2, {"--cpus", "8192"}},
    {"info --cpus 8193", 2, {"--cpus", "8192"}},
    {"info --cpus -1", 2, {"--cpus", "-1"}},
    {"info --cpus 0", 2, {"--cpus", "minimum"}},
    {"info --cpus nan", 2, {"--cpus", "nan"}},
    {"info --cpus 1e3", 2, {"--cpus", "1e3"}},
    {"info --cpus ' 4'", 2, {"--cpus"}},
    {"info --cpus 99999999999999999999", 2, {"--cpus", "64 bits"}},
    {"info --cmdline swiotlb=99999999999999999999", 2, {"nslabs", "64 bits"}},
    {"info --cmdline swiotlb=4294967296", 2, {"nslabs", "too large"}},
    {"info --cmdline swiotlb=1024,99999999", 2, {"nareas", "too large"}},
    {"info --cmdline swiotlb=abc", 2, {"abc"}},
    {"info --cmdline swiotlb=", 2, {"empty value"}},
    {"info --cmdline swiotlb=1024,,force", 2, {"empty field"}},
    {"info --cmdline swiotlb=1024,frob", 2, {"frob"}},
    {"info --cmdline swiotlb=1024,addr=0x1001", 2, {"addr=0x1001", "page-aligned"}},
    {"info --cmdline swiotlb=1024,addr=0xfffffffffffff000", 2, {"past the end"}},
    {"info --cmdline swiotlb=1024,addr=", 2, {"addr="}},
    {"info --cmdline swiotlb=09", 2, {"09", "octal"}},
    {"info --cmdline 'swiotlb=1024 swiotlb'", 2, {"no value"}},
    {"info --cmdline swiotlb=-1", 2, {"-1"}},
    {"info --cmdline 'swiotlb=1024 swiotlb_high=abc'", 2, {"swiotlb_high", "abc"}},
    {"info --cmdline 'swiotlb=1024 swiotlb_high=99999999999999999999'", 2, {"swiotlb_high", "64 bits"}},
    {"info --cmdline 'swiotlb=1024 swiotlb_high=4294967296'", 2, {"swiotlb_high", "too large"}},
    {"info --cmdline 'swiotlb=1024 swiotlb_high=1024,99999999'", 2, {"swiotlb_high", "nareas"}},
    {"info --cmdline 'swiotlb=1024 swiotlb_high'", 2, {"swiotlb_high", "no value"}},
    {"info --cmdline 'swiotlb=1024 swiotlb_high='", 2, {"swiotlb_high", "nslabs"}},
    {"info --cmdline 'swiotlb=1024 swiotlb_high=1024,'", 2, {"swiotlb_high", "nareas"}},
    {"info --cmdline 'swiotlb=1024 swiotlb_high=-5'", 2, {"swiotlb_high", "-5"}},
    // A 100 kB token is quoted by a short prefix and its length.
    {"info --cmdline swiotlb=1024," + kLongWord, 2, {"unknown word", "bytes in all"}},
    {"info --cmdline swiotlb=" + kLongDigits, 2, {"nslabs", "64 bits", "bytes in all"}},
    {"info --cmdline 'swiotlb=1024 swiotlb_high=" + kLongWord + "'", 2, {"swiotlb_high", "bytes in all"}},
    {"info --cpus " + kLongDigits, 2, {"--cpus", "bytes in all"}},
    {"size @good.trace@ --ram " + kLongWord, 2, {"--ram", "bytes in all"}},
    // demo: counts.
    {"demo --transfers -1", 2, {"--transfers", "-1"}},
    {"demo --transfers 99999999999999999999", 2, {"--transfers", "64 bits"}},
    {"demo --transfers 4294967297", 2, {"--transfers", "limit"}},
    {"demo --transfers abc", 2, {"--transfers", "abc"}},
    {"demo --transfers 1.5", 2, {"--transfers", "1.5"}},
    {"demo --transfers nan", 2, {"--transfers", "nan"}},
    {"demo --seed -5", 2, {"--seed", "-5"}},
    {"demo --queue-depth 0", 2, {"--queue-depth"}},
    {"demo --queue-depth 5000", 2, {"--queue-depth", "4096"}},
    {"demo --queue-depth -1", 2, {"--queue-depth"}},
    {"demo --cmdline swiotlb=abc", 2, {"abc"}},
    // workload: counts, and a file that cannot be written.
    {"workload --events -5", 2, {"--events", "-5"}},
    {"workload --events 1000000000000", 2, {"--events", "limit"}},
    {"workload --events 1e12", 2, {"--events", "1e12"}},
    {"workload --events nan", 2, {"--events", "nan"}},
    {"workload --events +5", 2, {"--events", "+5"}},
    {"workload --cpus 0", 2, {"--cpus"}},
    {"workload --cpus 2147483648", 2, {"--cpus", "8192"}},
    {"workload --cpus -4", 2, {"--cpus", "-4"}},
    {"workload --cpus 3 --events 10", 2, {"power of two"}},
    {"workload --profile frob", 2, {"frob"}},
    {"workload --seed -1", 2, {"--seed"}},
    {"workload --events 10 -o /nonexistent-dir/out.trace", 3, {"/nonexistent-dir/out.trace"}},
    // bench: the filter and the time.
    {"bench --filter '" + kNested + "'", 2, {"--filter", "at most 1024"}},
    {"bench --filter '" + kNestedShort + "'", 2, {"--filter", "'(' at column 1", "groups"}},
    {"bench --filter '(map)'", 2, {"--filter", "groups"}},
    {"bench --filter '[a-z]'", 2, {"--filter", "classes"}},
    {"bench --filter 'a{2}'", 2, {"--filter", "counted"}},
    {"bench --filter '*map'", 2, {"--filter", "quantifier"}},
    {"bench --filter 'map**'", 2, {"--filter", "quantifier"}},
    {"bench --filter 'map\\'", 2, {"--filter"}},
    {"bench --filter 'a^b'", 2, {"--filter", "'^'"}},
    {"bench --filter 'a$b'", 2, {"--filter", "'$'"}},
    {"bench --filter no-such-case", 2, {"no-such-case", "matches no case"}},
    {"bench --filter " + kLong2k, 2, {"--filter", "at most 1024"}},
    {"bench --min-time nan", 2, {"--min-time", "nan"}},
    {"bench --min-time -1", 2, {"--min-time", "-1"}},
    {"bench --min-time inf", 2, {"--min-time", "inf"}},
    {"bench --min-time 0", 2, {"--min-time"}},
    {"bench --min-time 1e9", 2, {"--min-time", "limit"}},
    {"bench --min-time 0.1s", 2, {"--min-time", "0.1s"}},
    // size: --ram, --nareas and the trace.
    {"size @good.trace@ --ram 99999999999999999999", 2, {"--ram", "99999999999999999999"}},
    {"size @good.trace@ --ram -1", 2, {"--ram", "-1"}},
    {"size @good.trace@ --ram 16X", 2, {"--ram", "16X"}},
    {"size @good.trace@ --ram 99999999999T", 2, {"--ram", "99999999999T"}},
    {"size @good.trace@ --ram nan", 2, {"--ram", "nan"}},
    {"size @good.trace@ --nareas -1", 2, {"--nareas"}},
    {"size @good.trace@ --nareas 99999999999", 2, {"--nareas"}},
    {"size /nonexistent.trace", 3, {"/nonexistent.trace"}},
    {"size @a_directory@", 2, {"a_directory", "directory"}},
    {"size /dev/zero", 2, {"/dev/zero", "device"}},
    {"size @empty.trace@", 2, {"swiotlb-trace"}},
    {"size @cr_only.trace@", 2, {"carriage return", "CR"}},
    {"size @long_line.trace@", 2, {"line 4", "limit"}},
    {"size @no_magic.trace@", 2, {"line 1"}},
    // replay: options.
    {"replay @good.trace@ --nslabs 2147483648", 2, {"2147483648", "replay limit"}},
    {"replay @good.trace@ --nslabs -1", 2, {"--nslabs", "-1"}},
    {"replay @good.trace@ --nslabs 1000", 2, {"1000", "multiple"}},
    {"replay @good.trace@ --nslabs 0", 2, {"nslabs 0"}},
    {"replay @good.trace@ --nareas 3", 2, {"nareas 3", "power of two"}},
    {"replay @good.trace@ --nareas -1", 2, {"--nareas"}},
    {"replay @good.trace@ --start -1", 2, {"--start"}},
    {"replay @good.trace@ --start 0xfffffffffffff000", 2, {"0xfffffffffffff000", "past the end"}},
    {"replay @good.trace@ --start 0x801", 2, {"0x801", "aligned"}},
    {"replay @good.trace@ --dynamic --grow-nslabs -1", 2, {"--grow-nslabs"}},
    {"replay @good.trace@ --dynamic --grow-nslabs 0", 2, {"grown pools of 0 slots"}},
    {"replay @good.trace@ --dynamic --shrink-after 0", 2, {"shrink after 0"}},
    {"replay @good.trace@ --dynamic --shrink-after -3", 2, {"--shrink-after"}},
    {"replay @good.trace@ --dynamic --order frob", 2, {"--order", "frob"}},
    {"replay @good.trace@ --grow-nslabs 4096", 2, {"--grow-nslabs", "--dynamic"}},
    {"replay @good.trace@ --policy frob", 2, {"frob"}},
    // replay: the file.
    {"replay /nonexistent.trace", 3, {"/nonexistent.trace"}},
    {"replay @a_directory@", 2, {"a_directory", "directory"}},
    {"replay /dev/zero", 2, {"/dev/zero", "device"}},
    {"replay @empty.trace@", 2, {"swiotlb-trace"}},
    {"replay @no_magic.trace@", 2, {"line 1"}},
    {"replay @v2.trace@", 2, {"line 1", "v2"}},
    {"replay @cr_only.trace@", 2, {"carriage return", "CR"}},
    {"replay @long_line.trace@", 2, {"line 4", "limit"}},
    {"replay @long_event.trace@", 2, {"line 4"}},
    {"replay @long_field.trace@", 2, {"line 4", "orig", "bytes in all"}},
    {"replay @unknown_op.trace@", 2, {"line 4", "frobnicate"}},
    {"replay @unknown_dev.trace@", 2, {"line 4", "nodev"}},
    {"replay @bad_number.trace@", 2, {"line 4", "4o96"}},
    {"replay @bad_dir.trace@", 2, {"line 4", "direction"}},
    {"replay @extra_field.trace@", 2, {"line 4", "extra"}},
    {"replay @huge_pool.trace@", 2, {"2147483648", "replay limit"}},
    {"replay --dynamic @huge_pool.trace@", 2, {"2147483648", "replay limit"}},
    {"replay @wrap_pool.trace@", 2, {"0xfffffffffffff000", "past the end"}},
    {"replay @no_pool.trace@", 2, {"--nslabs"}},
    {"replay @pool_nareas0.trace@", 2, {"line 2", "nareas"}},
    // iova.
    {"iova replay /nonexistent.iova", 3, {"/nonexistent.iova"}},
    {"iova replay @a_directory@", 2, {"a_directory", "directory"}},
    {"iova replay /dev/zero", 2, {"/dev/zero", "device"}},
    {"iova replay @empty.iova@", 2, {"empty"}},
    {"iova replay @cpu_2_31.iova@", 2, {"line 3", "cpu 2147483648", "8192"}},
    {"iova replay @cpu_888880.iova@", 2, {"line 3", "cpu 888880"}},
    {"iova replay @cpu_free.iova@", 2, {"line 3", "cpu 100000"}},
    {"iova replay @cpu_2_32.iova@", 2, {"line 3", "cpu"}},
    {"iova replay @cr_only.iova@", 2, {"line 1", "carriage return"}},
    {"iova replay @long_line.iova@", 2, {"line 3", "limit"}},
    {"iova replay @long_field.iova@", 2, {"line 3", "size", "bytes in all"}},
    {"iova replay @bad_version.iova@", 2, {"line 1", "version"}},
    {"iova replay @unknown_op.iova@", 2, {"line 3", "frob"}},
    {"iova replay @undeclared.iova@", 2, {"line 2", "domain 7"}},
    {"iova replay @bad_granule.iova@", 2, {"line 2", "granule 3000"}},
    {"iova replay @twice.iova@", 2, {"line 3", "domain 0"}},
    {"iova replay @flush.iova@", 2, {"line 3", "flush"}},
    {"iova replay @fields.iova@", 2, {"line 3", "alloc"}},
    {"iova replay @reserve.iova@", 2, {"line 3", "pfn_lo"}},
    {"iova replay @good.iova@ --cpus 0", 2, {"--cpus"}},
    {"iova replay @good.iova@ --cpus -1", 2, {"--cpus"}},
    {"iova replay @good.iova@ --cpus 99999", 2, {"--cpus", "8192"}},
    {"iova --mask-bits 65", 2, {"--mask-bits", "65"}},
    {"iova --mask-bits -1", 2, {"--mask-bits"}},
    {"iova --dma-ranges garbage", 2, {"--dma-ranges"}},
    // An exception no command caught: a message and 3, never a signal.
    {"internal-test-throw bad_alloc", 3, {"out of memory"}},
    {"internal-test-throw runtime", 3, {"unexpected failure", "on purpose"}},
    {"internal-test-throw other", 3, {"unexpected failure"}},
};
// clang-format on

INSTANTIATE_TEST_SUITE_P(Corpus, BadInputTest, ::testing::ValuesIn(kCases));

TEST(BadInputCorpus, HasAtLeastAHundredCases) {
  EXPECT_GE(std::size(kCases), 100u);
}

// Edge inputs that are good, or good enough: each must end well.

TEST(EdgeInput, CrlfTraceReadsAsLf) {
  const CliResult crlf = run("replay --json @crlf.trace@");
  const CliResult lf = run("replay --json @good.trace@");
  ASSERT_EQ(crlf.status, 0) << crlf.err;
  ASSERT_EQ(lf.status, 0) << lf.err;
  EXPECT_EQ(nlohmann::json::parse(crlf.out).at("maps"), nlohmann::json::parse(lf.out).at("maps"));
}

TEST(EdgeInput, CrlfIovaTraceReadsAsLf) {
  const CliResult r = run("iova replay @crlf.iova@");
  EXPECT_EQ(r.status, 0) << r.err;
}

TEST(EdgeInput, TraceFromAPipeIsRead) {
  const CliResult r = run("replay --json /dev/stdin", "@good.trace@");
  ASSERT_EQ(r.status, 0) << r.err;
  EXPECT_EQ(nlohmann::json::parse(r.out).at("maps"), 1);
}

TEST(EdgeInput, IovaTraceFromAPipeIsRead) {
  const CliResult r = run("iova replay /dev/stdin", "@good.iova@");
  EXPECT_EQ(r.status, 0) << r.err;
}

// A map larger than any pool is rejected; it is never served from a
// truncated slot count.
TEST(EdgeInput, MapOf2To63BytesFails) {
  const CliResult r = run("replay --json @huge_map.trace@");
  ASSERT_EQ(r.status, 0) << r.err;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j.at("rejected"), 1) << r.out;
  EXPECT_EQ(j.at("final_used_slots"), 0) << r.out;
}

TEST(EdgeInput, MapOf2To43PlusASlotFails) {
  const CliResult r = run("replay --json @map_2_43.trace@");
  ASSERT_EQ(r.status, 0) << r.err;
  const nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j.at("rejected"), 1) << r.out;
}

TEST(EdgeInput, SizeDoesNotRecommendAPoolForAnUnservableMap) {
  const CliResult r = run("size @huge_map.trace@");
  EXPECT_EQ(r.status, 0) << r.err;
  EXPECT_THAT(r.out, ::testing::Not(::testing::HasSubstr("swiotlb=128,1")));
}

// An all-ones min_align_mask once made the search stride 0: both commands
// must return.
TEST(EdgeInput, AllOnesMinAlignMaskReturns) {
  const CliResult replay = run("replay --json @align_ones.trace@");
  EXPECT_EQ(replay.status, 0) << replay.err;
  const CliResult size = run("size @align_ones.trace@");
  EXPECT_EQ(size.status, 0) << size.err;
}

TEST(EdgeInput, CpusAbove2To31IsRefusedNotDividedByZero) {
  const CliResult r = run("info --cpus 2147483648");
  EXPECT_EQ(r.status, 2);
}

TEST(EdgeInput, NestedParenthesesDoNotExhaustTheStack) {
  const std::string nested = std::string(100000, '(');
  const CliResult r = run("bench --filter '" + nested + "'");
  EXPECT_EQ(r.status, 2) << r.err.substr(0, 200);
}

TEST(EdgeInput, BenchFilterKeepsItsRegexSubset) {
  const CliResult r =
      run("bench --json --filter '^map_unmap/linux/512$|lookup/linear/1/t2$' --min-time 0.001");
  ASSERT_EQ(r.status, 0) << r.err;
  const nlohmann::json rows = nlohmann::json::parse(r.out);
  std::vector<std::string> names;
  for (const auto& row : rows) {
    names.push_back(row.at("name").get<std::string>());
  }
  EXPECT_THAT(names, ::testing::UnorderedElementsAre("map_unmap/linux/512", "lookup/linear/1/t2"));
}

TEST(EdgeInput, HelpIsSuccess) {
  EXPECT_EQ(run("--help").status, 0);
  EXPECT_EQ(run("replay --help").status, 0);
}

TEST(EdgeInput, InternalThrowIsNotListed) {
  const CliResult r = run("--help");
  EXPECT_THAT(r.out, ::testing::Not(::testing::HasSubstr("internal-test-throw")));
}

nlohmann::json info_json(const std::string& cmdline) {
  const CliResult r = run("info --cpus 1 --json --cmdline '" + cmdline + "'");
  EXPECT_EQ(r.status, 0) << r.err;
  return nlohmann::json::parse(r.out);
}

TEST(EdgeInput, SwiotlbHighAfterDoubleDashBelongsToInit) {
  EXPECT_EQ(info_json("swiotlb=1024 -- swiotlb_high=4096").at("high_nslabs"), 0);
}

TEST(EdgeInput, SwiotlbHighAfterANewlineOrTabIsRead) {
  EXPECT_EQ(info_json("swiotlb=1024\nswiotlb_high=4096").at("high_nslabs"), 4096);
  EXPECT_EQ(info_json("swiotlb=1024\tswiotlb_high=4096").at("high_nslabs"), 4096);
}

TEST(EdgeInput, SwiotlbHighRoundingAndRepeatsAreWarned) {
  const nlohmann::json j = info_json("swiotlb_high=3000,3 swiotlb_high=5000");
  EXPECT_EQ(j.at("high_nslabs"), 8192);
  EXPECT_EQ(j.at("high_nareas"), 4);
  const std::string warnings = j.at("warnings").dump();
  EXPECT_THAT(warnings, ::testing::HasSubstr("repeats swiotlb_high="));
  EXPECT_THAT(warnings, ::testing::HasSubstr("nareas rounded up from 3 to 4"));
  EXPECT_THAT(warnings, ::testing::HasSubstr("rounded up from 5000 to 5120"));
  EXPECT_THAT(warnings, ::testing::HasSubstr("a power of two"));
}

}  // namespace
