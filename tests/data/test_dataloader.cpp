// Tests of TensorDataset and DataLoader: batching and collation, drop_last,
// shuffling (a permutation per epoch, new each epoch, reproducible from the
// seed and from the generator's saved state), background prefetch (same
// batches, exceptions delivered in order, early exit), and errors.
#include "test_util.hpp"

#include "io/io_test_util.hpp"

#include <algorithm>
#include <atomic>
#include <set>

#include <genai/data/dataloader.hpp>

using namespace genai;
using namespace genai::data;

namespace {

/// inputs (n, 2) with row i = (i, -i); targets (n,) = i (int64).
TensorDataset numbered(int64_t n) {
  std::vector<double> in;
  std::vector<int64_t> tg;
  for (int64_t i = 0; i < n; ++i) {
    in.push_back(static_cast<double>(i));
    in.push_back(-static_cast<double>(i));
    tg.push_back(i);
  }
  return TensorDataset(from_vector(in, {n, 2}, kFloat32), from_vector(tg, {n}, kInt64));
}

/// The target ids of every batch of one epoch.
std::vector<std::vector<int64_t>> epoch_ids(DataLoader& loader) {
  std::vector<std::vector<int64_t>> out;
  for (const Example& b : loader) out.push_back(b.target.to_vector<int64_t>());
  return out;
}

/// A dataset whose example `bad` throws, and that counts get() calls.
class Faulty : public Dataset {
 public:
  Faulty(int64_t n, int64_t bad) : n_(n), bad_(bad) {}
  int64_t size() const override { return n_; }
  Example get(int64_t i) const override {
    ++calls;
    GENAI_CHECK(i != bad_, "Faulty: example ", i, " is broken");
    return {full({2}, static_cast<double>(i)), Tensor()};
  }
  mutable std::atomic<int64_t> calls{0};

 private:
  int64_t n_, bad_;
};

}  // namespace

TEST_CASE("TensorDataset returns slices along dimension 0") {
  TensorDataset ds = numbered(4);
  CHECK(ds.size() == 4);
  Example e = ds.get(2);
  CHECK(e.input.to_vector() == std::vector<float>{2, -2});
  CHECK(e.target.dim() == 0);
  CHECK(e.target.item<int64_t>() == 2);
  CHECK(e.input.is_alias_of(ds.inputs()));  // a view, no copy
  CHECK_ERROR_CONTAINS(ds.get(4), "TensorDataset", "index 4 out of range for 4");
  CHECK_ERROR_CONTAINS(TensorDataset(zeros({3, 2}), zeros({2})), "(3, 2)", "(2,)", "same size in dimension 0");
  TensorDataset unlabelled(zeros({3, 2}));
  CHECK_FALSE(unlabelled.get(0).target.defined());
}

TEST_CASE("DataLoader batches in order, collates by stacking, keeps or drops the last batch") {
  TensorDataset ds = numbered(10);
  DataLoader loader(ds, {.batch_size = 4});
  CHECK(loader.size() == 3);
  std::vector<Example> batches;
  for (const Example& b : loader) batches.push_back(b);
  REQUIRE(batches.size() == 3);
  CHECK(batches[0].input.shape() == Shape{4, 2});
  CHECK(batches[0].target.shape() == Shape{4});
  CHECK(batches[0].input.to_vector() == std::vector<float>{0, 0, 1, -1, 2, -2, 3, -3});
  CHECK(batches[2].input.shape() == Shape{2, 2});  // the smaller last batch
  CHECK(batches[2].target.to_vector<int64_t>() == std::vector<int64_t>{8, 9});

  DataLoader dropping(ds, {.batch_size = 4, .drop_last = true});
  CHECK(dropping.size() == 2);
  auto ids = epoch_ids(dropping);
  CHECK(ids == std::vector<std::vector<int64_t>>{{0, 1, 2, 3}, {4, 5, 6, 7}});
  DataLoader exact(ds, {.batch_size = 5, .drop_last = true});
  CHECK(epoch_ids(exact).size() == 2);
  DataLoader bigger(ds, {.batch_size = 32, .drop_last = true});
  CHECK(bigger.size() == 0);
  CHECK(epoch_ids(bigger).empty());

  TensorDataset empty_ds(zeros({0, 2}));
  DataLoader empty_loader(empty_ds, {.batch_size = 3});
  CHECK(empty_loader.size() == 0);
  CHECK(epoch_ids(empty_loader).empty());
}

TEST_CASE("DataLoader shuffles a new permutation each epoch, reproducibly from the seed") {
  TensorDataset ds = numbered(23);
  DataLoader a(ds, {.batch_size = 5, .shuffle = true, .seed = 42});
  DataLoader b(ds, {.batch_size = 5, .shuffle = true, .seed = 42});
  DataLoader c(ds, {.batch_size = 5, .shuffle = true, .seed = 43});
  std::vector<std::vector<std::vector<int64_t>>> epochs_a, epochs_b, epochs_c;
  for (int e = 0; e < 3; ++e) {
    epochs_a.push_back(epoch_ids(a));
    epochs_b.push_back(epoch_ids(b));
    epochs_c.push_back(epoch_ids(c));
  }
  CHECK(a.epoch() == 3);
  for (int e = 0; e < 3; ++e) {
    INFO("epoch " << e);
    // every example exactly once, batch sizes 5, 5, 5, 5, 3
    std::vector<int64_t> all;
    for (const auto& batch : epochs_a[e]) all.insert(all.end(), batch.begin(), batch.end());
    REQUIRE(epochs_a[e].size() == 5);
    CHECK(epochs_a[e].back().size() == 3);
    std::vector<int64_t> sorted = all;
    std::sort(sorted.begin(), sorted.end());
    std::vector<int64_t> expected(23);
    for (int64_t i = 0; i < 23; ++i) expected[static_cast<size_t>(i)] = i;
    CHECK(sorted == expected);
    CHECK(all != expected);  // shuffled (a fixed seed: the chance of identity is 1/23!)
    CHECK(epochs_a[e] == epochs_b[e]);  // same seed, same order
    CHECK(epochs_a[e] != epochs_c[e]);  // another seed, another order
  }
  CHECK(epochs_a[0] != epochs_a[1]);  // reshuffled every epoch
  CHECK(epochs_a[1] != epochs_a[2]);
}

TEST_CASE("DataLoader resumes its shuffle sequence from a saved generator state") {
  TensorDataset ds = numbered(12);
  DataLoader a(ds, {.batch_size = 4, .shuffle = true, .seed = 5});
  epoch_ids(a);
  std::vector<uint64_t> state = a.generator().state();  // as a checkpoint would save it
  auto second = epoch_ids(a);
  auto third = epoch_ids(a);
  DataLoader resumed(ds, {.batch_size = 4, .shuffle = true, .seed = 999});
  resumed.generator().set_state(state);
  CHECK(epoch_ids(resumed) == second);
  CHECK(epoch_ids(resumed) == third);
}

TEST_CASE("DataLoader prefetch gives the same batches as without it") {
  TensorDataset ds = numbered(37);
  for (bool shuffle : {false, true}) {
    INFO("shuffle " << shuffle);
    DataLoader plain(ds, {.batch_size = 6, .shuffle = shuffle, .seed = 7});
    DataLoader pre(ds, {.batch_size = 6, .shuffle = shuffle, .seed = 7, .prefetch = true});
    for (int e = 0; e < 3; ++e) {
      std::vector<Example> x, y;
      for (const Example& b : plain) x.push_back(b);
      for (const Example& b : pre) y.push_back(b);
      REQUIRE(x.size() == y.size());
      REQUIRE(x.size() == 7);
      for (size_t i = 0; i < x.size(); ++i) {
        CHECK(x[i].input.to_vector() == y[i].input.to_vector());
        CHECK(x[i].target.to_vector<int64_t>() == y[i].target.to_vector<int64_t>());
      }
    }
  }
}

TEST_CASE("DataLoader prefetch delivers a dataset's exception after the good batches, and stops on early exit") {
  Faulty ds(20, 13);  // batch 3 (examples 12..15) fails
  for (bool prefetch : {false, true}) {
    INFO("prefetch " << prefetch);
    DataLoader loader(ds, {.batch_size = 4, .prefetch = prefetch});
    int good = 0;
    std::string msg = genai_test::error_of([&] {
      for (const Example& b : loader) {
        CHECK(b.input.shape() == Shape{4, 2});
        CHECK_FALSE(b.target.defined());
        ++good;
      }
    });
    CHECK(good == 3);
    CHECK_THAT(msg, Catch::Matchers::Contains("example 13 is broken"));
  }
  // leaving the loop early joins the worker (no hang, no crash), and a new epoch starts cleanly
  Faulty ok(1000, -1);
  DataLoader loader(ok, {.batch_size = 2, .prefetch = true});
  for (const Example& b : loader) {
    (void)b;
    break;
  }
  CHECK(ok.calls.load() <= 8);  // the worker ran at most a couple of batches ahead
  int n = 0;
  for (const Example& b : loader) {
    (void)b;
    if (++n == 3) break;
  }
  CHECK(n == 3);
}

TEST_CASE("DataLoader and collate errors") {
  TensorDataset ds = numbered(4);
  CHECK_ERROR_CONTAINS(DataLoader(ds, {.batch_size = 0}), "DataLoader", "batch_size must be >= 1");
  std::vector<Example> mixed{{zeros({2}), Tensor()}, {zeros({3}), Tensor()}};
  CHECK_ERROR_CONTAINS(collate(mixed), "collate", "example 1", "(3,)", "(2,)");
  std::vector<Example> targets{{zeros({2}), zeros({})}, {zeros({2}), Tensor()}};
  CHECK_ERROR_CONTAINS(collate(targets), "collate", "example 1 has no target");
}
