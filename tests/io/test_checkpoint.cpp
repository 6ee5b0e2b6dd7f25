// Tests of checkpoints: atomic writes (an interrupted or crashed save leaves the
// previous checkpoint intact and loadable), the Checkpoint bundle's round trip,
// and generator state.
#include "test_util.hpp"

#include "io/io_test_util.hpp"

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <limits>

#include <genai/io/checkpoint.hpp>

using namespace genai;
using genai_test::TempDir;

namespace {

/// Clears the atomic-write test hook at scope exit.
struct HookGuard {
  ~HookGuard() { io::detail::atomic_write_hook() = nullptr; }
};

io::Checkpoint make_checkpoint(int64_t step) {
  io::Checkpoint ck;
  ck.model()["encoder.weight"] = full({3, 4}, static_cast<double>(step));
  ck.model()["encoder.bias"] = arange<int64_t>(4).to(kFloat64);
  ck.optim()["state.0.exp_avg"] = randn({3, 4});
  ck.optim()["state.0.step"] = scalar_tensor(static_cast<double>(step), kInt64);
  ck.sched()["last_epoch"] = scalar_tensor(3, kInt64);
  ck.ints["step"] = step;
  ck.floats["best_loss"] = 0.125;
  ck.strings["run"] = "dcgan";
  return ck;
}

std::vector<std::string> files_in(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& e : std::filesystem::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

}  // namespace

TEST_CASE("write_file_atomic writes the content and leaves no temporary file") {
  TempDir dir;
  const std::string path = dir.file("out.bin");
  std::string a = "hello ", b = "world";
  io::write_file_atomic(path, std::vector<io::ConstBytes>{{a.data(), a.size()}, {b.data(), b.size()}});
  auto got = genai_test::read_bytes(path);
  CHECK(std::string(got.begin(), got.end()) == "hello world");
  io::write_file_atomic(path, "x", 1);  // replaces
  got = genai_test::read_bytes(path);
  CHECK(std::string(got.begin(), got.end()) == "x");
  CHECK(files_in(dir.path()) == std::vector<std::string>{"out.bin"});
}

TEST_CASE("write_file_atomic calls its test hook when exactly half the temporary file is written") {
  TempDir dir;
  HookGuard guard;
  const std::string path = dir.file("half.bin");
  std::string tmp_seen;
  int64_t size_seen = -1;
  io::detail::atomic_write_hook() = [&](const std::string& tmp) {
    tmp_seen = tmp;
    struct stat st;
    if (::stat(tmp.c_str(), &st) == 0) size_seen = st.st_size;
  };
  std::vector<unsigned char> data(1001, 7);
  std::vector<unsigned char> part2(3, 9);
  io::write_file_atomic(path, std::vector<io::ConstBytes>{{data.data(), data.size()}, {part2.data(), part2.size()}});
  CHECK(tmp_seen == path + ".tmp." + std::to_string(::getpid()));
  CHECK(size_seen == 502);  // (1001 + 3) / 2
  CHECK(genai_test::read_bytes(path).size() == 1004);
}

TEST_CASE("an interrupted checkpoint save leaves the previous checkpoint intact and loadable") {
  TempDir dir;
  HookGuard guard;
  const std::string path = dir.file("ckpt.safetensors");
  manual_seed(3);
  make_checkpoint(100).save(path);
  const auto before = genai_test::read_bytes(path);

  io::detail::atomic_write_hook() = [](const std::string&) { throw std::runtime_error("simulated crash mid-write"); };
  CHECK_THROWS_WITH(make_checkpoint(200).save(path), Catch::Matchers::Contains("simulated crash"));
  io::detail::atomic_write_hook() = nullptr;

  CHECK(genai_test::read_bytes(path) == before);                                 // untouched
  CHECK(files_in(dir.path()) == std::vector<std::string>{"ckpt.safetensors"});  // temporary removed
  io::Checkpoint ck = io::Checkpoint::load(path);
  CHECK(ck.get_int("step") == 100);
  CHECK(ck.model().at("encoder.weight").to_vector() == std::vector<float>(12, 100.f));

  make_checkpoint(300).save(path);  // a later save works
  CHECK(io::Checkpoint::load(path).get_int("step") == 300);
}

TEST_CASE("a process killed in the middle of a checkpoint save leaves the previous checkpoint intact") {
  TempDir dir;
  const std::string path = dir.file("ckpt.safetensors");
  manual_seed(4);
  make_checkpoint(1).save(path);
  const auto before = genai_test::read_bytes(path);
  io::Checkpoint next = make_checkpoint(2);
  next.model()["big"] = zeros({1000});

  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) {  // child: die (no cleanup, no unwinding) half-way through writing
    io::detail::atomic_write_hook() = [](const std::string&) { ::_exit(42); };
    try {
      next.save(path);
    } catch (...) {
    }
    ::_exit(0);
  }
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFEXITED(status));
  REQUIRE(WEXITSTATUS(status) == 42);

  // the half-written temporary of the dead process is left behind, the checkpoint is not touched
  const std::string tmp = path + ".tmp." + std::to_string(pid);
  REQUIRE(std::filesystem::exists(tmp));
  CHECK(std::filesystem::file_size(tmp) < io::safetensors_bytes({{"model.big", zeros({1000})}}).size());
  CHECK(genai_test::read_bytes(path) == before);
  io::Checkpoint ck = io::Checkpoint::load(path);
  CHECK(ck.get_int("step") == 1);
  CHECK(ck.model().count("big") == 0);
  // the stray temporary does not disturb the next save
  next.save(path);
  CHECK(io::Checkpoint::load(path).model().at("big").numel() == 1000);
}

TEST_CASE("a checkpoint save into a read-only or missing directory fails cleanly") {
  TempDir dir;
  const std::string sub = dir.file("ro");
  std::filesystem::create_directory(sub);
  const std::string path = sub + "/ckpt.safetensors";
  make_checkpoint(5).save(path);
  const auto before = genai_test::read_bytes(path);
  CHECK_ERROR_CONTAINS(make_checkpoint(6).save(dir.file("missing/ckpt.safetensors")), "missing/ckpt.safetensors",
                       "cannot create the temporary file", "No such file or directory");
  if (::geteuid() == 0) {
    WARN("running as root: a read-only directory does not stop root, that part of the test is skipped");
    return;
  }
  ::chmod(sub.c_str(), 0555);
  CHECK_ERROR_CONTAINS(make_checkpoint(6).save(path), path, "Permission denied");
  ::chmod(sub.c_str(), 0755);
  CHECK(genai_test::read_bytes(path) == before);
  CHECK(io::Checkpoint::load(path).get_int("step") == 5);
}

TEST_CASE("Checkpoint round trip of tensor groups, metadata and generator state") {
  TempDir dir;
  const std::string path = dir.file("all.safetensors");
  manual_seed(7);
  io::Checkpoint ck = make_checkpoint(1234);
  ck.group("ema")["w"] = randn({2, 2}, kFloat64);
  ck.ints["epoch"] = -3;
  ck.ints["min"] = std::numeric_limits<int64_t>::min();
  ck.floats["lr"] = 0.1;
  ck.floats["tiny"] = 4.9406564584124654e-324;
  ck.floats["inf"] = -INFINITY;
  ck.floats["nan"] = NAN;
  ck.floats["neg_zero"] = -0.0;
  ck.strings["note"] = "a, \"quoted\" note — with unicode\nand a newline";
  ck.strings["empty"] = "";
  Generator gen(99);
  for (int i = 0; i < 5; ++i) gen.normal();  // leaves a spare normal cached
  ck.set_generator("data", gen);
  ck.save(path);

  io::Checkpoint r = io::Checkpoint::load(path);
  CHECK(r.groups.size() == 5);  // model, optim, sched, rng, ema
  for (const auto& [g, tensors] : ck.groups) {
    INFO("group " << g);
    REQUIRE(r.groups.count(g) == 1);
    REQUIRE(r.groups.at(g).size() == tensors.size());
    for (const auto& [name, t] : tensors) {
      INFO(name);
      const Tensor& u = r.groups.at(g).at(name);
      CHECK(u.dtype() == t.dtype());
      CHECK(u.shape() == t.shape());
      CHECK(u.to_vector<double>() == t.to_vector<double>());
    }
  }
  CHECK(r.ints == ck.ints);
  CHECK(r.get_int("step") == 1234);
  CHECK(r.get_int("absent", 17) == 17);
  CHECK(r.get_float("lr") == 0.1);
  CHECK(r.get_float("tiny") == 4.9406564584124654e-324);
  CHECK(r.get_float("inf") == -INFINITY);
  CHECK(std::isnan(r.get_float("nan")));
  CHECK(std::signbit(r.get_float("neg_zero")));
  CHECK(r.strings == ck.strings);

  // the restored generator continues the same stream (including the cached spare normal)
  Generator g2(1);
  r.restore_generator("data", g2);
  for (int i = 0; i < 4; ++i) CHECK(g2.normal() == gen.normal());
  CHECK(g2.next_u64() == gen.next_u64());

  // a plain safetensors file underneath, readable by any tool
  std::map<std::string, std::string> meta;
  io::TensorMap flat = io::load_safetensors(path, &meta);
  CHECK(flat.count("model.encoder.weight") == 1);
  CHECK(flat.count("rng.data") == 1);
  CHECK(meta.at("int.step") == "1234");
  CHECK(meta.at("float.lr") == "0.1");
  CHECK(meta.at("genai.checkpoint") == "1");
  CHECK(meta.at("format") == "pt");
}

TEST_CASE("Checkpoint errors name what is wrong") {
  TempDir dir;
  io::Checkpoint ck;
  ck.group("bad.name")["w"] = zeros({1});
  CHECK_ERROR_CONTAINS(ck.save(dir.file("x.safetensors")), "group name 'bad.name'");
  ck.groups.clear();
  ck.group("")["w"] = zeros({1});
  CHECK_ERROR_CONTAINS(ck.save(dir.file("x.safetensors")), "group name ''");

  io::save_safetensors(dir.file("plain.safetensors"), {{"weight", zeros({2})}});
  CHECK_ERROR_CONTAINS(io::Checkpoint::load(dir.file("plain.safetensors")), "plain.safetensors",
                       "not a genai checkpoint", "load_safetensors");
  io::save_safetensors(dir.file("v2.safetensors"), {{"model.w", zeros({2})}}, {{"genai.checkpoint", "2"}});
  CHECK_ERROR_CONTAINS(io::Checkpoint::load(dir.file("v2.safetensors")), "version '2'");
  io::save_safetensors(dir.file("bad_int.safetensors"), {{"model.w", zeros({2})}},
                       {{"genai.checkpoint", "1"}, {"int.step", "12x"}});
  CHECK_ERROR_CONTAINS(io::Checkpoint::load(dir.file("bad_int.safetensors")), "metadata 'int.step' = '12x'",
                       "not a valid int64");
  io::save_safetensors(dir.file("noprefix.safetensors"), {{"w", zeros({2})}}, {{"genai.checkpoint", "1"}});
  CHECK_ERROR_CONTAINS(io::Checkpoint::load(dir.file("noprefix.safetensors")), "tensor 'w' has no '<group>.' prefix");

  io::Checkpoint empty;
  CHECK_ERROR_CONTAINS(empty.get_int("step"), "no int metadata 'step'");
  const io::Checkpoint& cempty = empty;
  CHECK_ERROR_CONTAINS(cempty.model(), "no tensor group 'model'");
  CHECK_ERROR_CONTAINS(cempty.restore_generator("x", default_generator()), "no tensor group 'rng'");

  Generator g;
  CHECK_ERROR_CONTAINS(io::load_generator_state(g, zeros({7})), "expected an int64 tensor of shape (7,)", "float32");
  CHECK_ERROR_CONTAINS(io::load_generator_state(g, zeros({6}, kInt64)), "(6,)");
}

TEST_CASE("generator state tensor round trip") {
  Generator a(12345);
  a.next_u64();
  Tensor st = io::generator_state_tensor(a);
  CHECK(st.dtype() == kInt64);
  CHECK(st.shape() == Shape{7});
  Generator b;
  io::load_generator_state(b, st);
  CHECK(b.state() == a.state());
  CHECK(b.uniform() == a.uniform());
}
