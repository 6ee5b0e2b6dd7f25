// Data-parallel training over MPI (genai/distributed): run by ctest under
// `mpirun -np 2` (tests/CMakeLists.txt). Every process runs every test case in the
// same order; the single-process reference runs inside each process, without MPI.
//
// The central check (issue 13): 20 steps on 2 ranks with per-rank batch B give the same
// parameters (to 1e-5) as 1 rank with batch 2B, for an MLP and for a network with
// synchronized batch norm, and every rank ends with identical parameters.
#include "test_util.hpp"

#include <genai/data/dataloader.hpp>
#include <genai/distributed/data_parallel.hpp>
#include <genai/distributed/sampler.hpp>
#include <genai/nn/linear.hpp>
#include <genai/nn/norm.hpp>
#include <genai/ops/loss.hpp>
#include <genai/optim/adam.hpp>

#include <algorithm>
#include <functional>
#include <memory>
#include <set>

using namespace genai;

namespace {

/// MPI starts once for the whole test program (and finalizes at exit).
struct MpiOnce {
  MpiOnce() { distributed::init(); }
};
void need_mpi() { static MpiOnce once; }

std::shared_ptr<nn::Sequential> make_model(bool batchnorm, uint64_t seed) {
  manual_seed(seed);
  auto m = std::make_shared<nn::Sequential>();
  // before batch norm without bias, as usual: the bias's true gradient is 0 there, and Adam
  // would turn its rounding noise into steps of size lr that differ between the runs
  m->push_back(std::make_shared<nn::Linear>(6, 16, !batchnorm));
  if (batchnorm) m->push_back(std::make_shared<nn::BatchNorm1d>(16));
  m->push_back(std::make_shared<nn::Tanh>());
  m->push_back(std::make_shared<nn::Linear>(16, 3));
  return m;
}

/// `steps` Adam steps on `ds`, this process's shard of it with per-process batch `batch`.
/// world == 1: the plain single-process run. Returns the state dict.
io::TensorMap train(nn::Sequential& m, const data::Dataset& ds, int64_t world, int64_t rank, int64_t batch,
                    int steps, bool use_ddp, double bucket_mb = 25) {
  distributed::DistributedSampler shard(ds, world, rank, {.shuffle = true, .seed = 7});
  data::DataLoader loader(shard, {.batch_size = batch});
  std::unique_ptr<distributed::DataParallel> ddp;
  if (use_ddp) ddp = std::make_unique<distributed::DataParallel>(m, distributed::DataParallelOptions{.bucket_mb = bucket_mb});
  optim::Adam opt(m.parameters(), {.lr = 1e-2});
  m.train();
  int step = 0;
  for (int64_t epoch = 0; step < steps; ++epoch) {
    shard.set_epoch(epoch);
    for (const data::Example& b : loader) {
      if (step == steps) break;
      opt.zero_grad();
      Tensor loss = cross_entropy(m.forward(b.input), b.target);
      loss.backward();
      if (ddp) ddp->synchronize();
      opt.step();
      ++step;
    }
  }
  return m.state_dict();
}

data::TensorDataset make_data(int64_t n) {
  Generator g(123);
  Tensor x = randn({n, 6}, kFloat32, g);
  Tensor y = randint(0, 3, {n}, kInt64, g);
  return data::TensorDataset(x, y);
}

bool same(const Tensor& a, const Tensor& b) { return a.to_vector<double>() == b.to_vector<double>(); }

/// Largest |a - b| over all entries of two state dicts with the same keys.
double max_diff(const io::TensorMap& a, const io::TensorMap& b) {
  double worst = 0;
  for (const auto& [k, t] : a) {
    REQUIRE(b.count(k) == 1);
    if (t.dtype() == kInt64) {
      CHECK(same(t, b.at(k)));
      continue;
    }
    const double d = max(abs(sub(t, b.at(k)))).item<double>();
    worst = std::max(worst, d);
  }
  return worst;
}

/// True when every rank holds bitwise the same values in every tensor of `sd`.
bool identical_across_ranks(const io::TensorMap& sd) {
  for (const auto& [k, t] : sd) {
    Tensor hi = contiguous(clone(to(t, kFloat64))), lo = neg(hi);
    distributed::all_reduce_(hi, /*max=*/true);
    distributed::all_reduce_(lo, /*max=*/true);  // -min
    if (!same(hi, neg(lo))) return false;
  }
  return true;
}

}  // namespace

TEST_CASE("distributed: the job has two processes", "[distributed]") {
  need_mpi();
  REQUIRE(distributed::world_size() == 2);
  REQUIRE(distributed::rank() >= 0);
  CHECK(distributed::is_main() == (distributed::rank() == 0));
}

TEST_CASE("DistributedSampler: shards are disjoint, cover the data, and batches union to the global batch",
          "[distributed]") {
  data::TensorDataset ds = make_data(23);  // 23: not divisible by 2 or 3 -> padding
  for (int64_t world : {1, 2, 3}) {
    std::vector<int64_t> all;
    std::vector<std::vector<int64_t>> shards;
    for (int64_t r = 0; r < world; ++r) {
      distributed::DistributedSampler s(ds, world, r, {.shuffle = true, .seed = 5});
      s.set_epoch(3);
      shards.push_back(s.indices());
      CHECK(s.size() == (23 + world - 1) / world);
      all.insert(all.end(), s.indices().begin(), s.indices().end());
    }
    std::set<int64_t> distinct(all.begin(), all.end());
    CHECK(distinct.size() == 23);  // every example, padded with repeats only
    // rank r's k-th entry is entry k * world + r of the one-process order
    distributed::DistributedSampler one(ds, 1, 0, {.shuffle = true, .seed = 5});
    one.set_epoch(3);
    for (int64_t r = 0; r < world; ++r)
      for (size_t k = 0; k < shards[static_cast<size_t>(r)].size(); ++k)
        if (static_cast<int64_t>(k) * world + r < 23)
          CHECK(shards[static_cast<size_t>(r)][k] == one.indices()[k * static_cast<size_t>(world) + static_cast<size_t>(r)]);
  }
  distributed::DistributedSampler a(ds, 2, 0, {.seed = 5}), b(ds, 2, 0, {.seed = 5});
  a.set_epoch(0);
  b.set_epoch(1);
  CHECK(a.indices() != b.indices());  // a new order every epoch
  CHECK_THROWS_AS(distributed::DistributedSampler(ds, 2, 2), Error);
}

TEST_CASE("all_reduce_sum sums over processes, and so does its gradient", "[distributed]") {
  need_mpi();
  const double r = distributed::rank();
  Tensor x = full({3}, r + 1.0, kFloat64).requires_grad_();
  Tensor y = distributed::all_reduce_sum(x);  // 1 + 2 on both ranks
  CHECK(allclose(y, full({3}, 3.0, kFloat64)));
  // total loss sum_r sum(y * (r + 1)): dloss/dx_r = sum_s (s + 1) = 3
  sum(mul(y, r + 1.0)).backward();
  CHECK(allclose(x.grad(), full({3}, 3.0, kFloat64)));
}

TEST_CASE("DataParallel broadcasts rank 0's parameters", "[distributed]") {
  need_mpi();
  auto m = make_model(true, 100 + static_cast<uint64_t>(distributed::rank()));  // different on each rank
  CHECK_FALSE(identical_across_ranks(m->state_dict()));
  distributed::DataParallel ddp(*m);
  CHECK(identical_across_ranks(m->state_dict()));
  auto ref = make_model(true, 100);  // rank 0's initialization
  CHECK(max_diff(m->state_dict(), ref->state_dict()) == 0);
}

TEST_CASE("2 ranks x batch B = 1 rank x batch 2B over 20 steps (MLP)", "[distributed]") {
  need_mpi();
  data::TensorDataset ds = make_data(100);
  const int64_t B = 8;
  for (double bucket_mb : {25.0, 1e-4}) {  // one bucket; one parameter per bucket (overlapped)
    auto m = make_model(false, 1);
    const io::TensorMap got = train(*m, ds, 2, distributed::rank(), B, 20, true, bucket_mb);
    auto r = make_model(false, 1);
    const io::TensorMap want = train(*r, ds, 1, 0, 2 * B, 20, false);
    INFO("bucket_mb " << bucket_mb);
    CHECK(max_diff(got, want) < 1e-5);
    CHECK(max_diff(got, make_model(false, 1)->state_dict()) > 1e-2);  // it did train
    CHECK(identical_across_ranks(got));
  }
}

TEST_CASE("2 ranks x batch B = 1 rank x batch 2B over 20 steps (synchronized batch norm)", "[distributed]") {
  need_mpi();
  data::TensorDataset ds = make_data(100);
  const int64_t B = 8;
  auto m = make_model(true, 2);
  CHECK(distributed::convert_sync_batchnorm(*m) == 1);
  const io::TensorMap got = train(*m, ds, 2, distributed::rank(), B, 20, true);
  auto r = make_model(true, 2);
  const io::TensorMap want = train(*r, ds, 1, 0, 2 * B, 20, false);
  CHECK(max_diff(got, want) < 1e-5);  // weights and the running statistics
  CHECK(identical_across_ranks(got));
  // without synchronization the statistics are per-rank batches: the runs differ
  auto u = make_model(true, 2);
  const io::TensorMap unsynced = train(*u, ds, 2, distributed::rank(), B, 20, true);
  CHECK(max_diff(unsynced, want) > 1e-4);
}

TEST_CASE("DataParallel::no_sync accumulates locally; the next synchronized backward averages the sum",
          "[distributed]") {
  need_mpi();
  const double r = distributed::rank();
  auto m = make_model(false, 3);
  distributed::DataParallel ddp(*m, {.bucket_mb = 1e-4});
  Generator g(50 + static_cast<uint64_t>(r));
  Tensor x1 = randn({4, 6}, kFloat32, g), x2 = randn({4, 6}, kFloat32, g);
  {
    auto guard = ddp.no_sync();
    sum(m->forward(x1)).backward();
    ddp.synchronize();  // does nothing inside no_sync
  }
  sum(m->forward(x2)).backward();
  ddp.synchronize();
  // reference: the average over ranks of (grad x1 + grad x2), computed locally from both ranks' inputs
  auto ref = make_model(false, 3);
  for (uint64_t s : {50ull, 51ull}) {
    Generator gs(s);
    Tensor a = randn({4, 6}, kFloat32, gs), b = randn({4, 6}, kFloat32, gs);
    sum(ref->forward(a)).backward();
    sum(ref->forward(b)).backward();
  }
  auto mp = m->parameters(), rp = ref->parameters();
  for (size_t i = 0; i < mp.size(); ++i) CHECK(allclose(mp[i].grad(), mul(rp[i].grad(), 0.5), 1e-5, 1e-6));
  // without no_sync every backward averages what it added: the same accumulated average
  for (Tensor p : m->parameters()) p.set_grad(Tensor());
  sum(m->forward(x1)).backward();
  sum(m->forward(x2)).backward();
  ddp.synchronize();  // does nothing: backward has already averaged
  for (size_t i = 0; i < mp.size(); ++i) CHECK(allclose(mp[i].grad(), mul(rp[i].grad(), 0.5), 1e-5, 1e-6));
}

TEST_CASE("backward() leaves averaged gradients without synchronize(): clipping sees them", "[distributed]") {
  need_mpi();
  auto m = make_model(false, 5);
  distributed::DataParallel ddp(*m, {.bucket_mb = 1e-4});
  Generator g(60 + static_cast<uint64_t>(distributed::rank()));
  sum(m->forward(randn({4, 6}, kFloat32, g))).backward();
  auto ref = make_model(false, 5);
  for (uint64_t s : {60ull, 61ull}) {
    Generator gs(s);
    sum(ref->forward(randn({4, 6}, kFloat32, gs))).backward();
  }
  auto mp = m->parameters(), rp = ref->parameters();
  for (size_t i = 0; i < mp.size(); ++i) CHECK(allclose(mp[i].grad(), mul(rp[i].grad(), 0.5), 1e-5, 1e-6));
  CHECK(ddp.stats().steps == 1);
  ddp.synchronize();
  CHECK(ddp.stats().steps == 1);  // nothing new to reduce
}

namespace {

/// A GAN-shaped pair: generator G (noise 4 -> 6) and critic D (6 -> 1), each with its own
/// optimizer and (when distributed) its own DataParallel, D then G updated every step
/// (WGAN-style mean losses, D frozen during G's backward as GAN training does).
std::pair<io::TensorMap, io::TensorMap> train_pair(const data::Dataset& ds, int64_t world, int64_t rank,
                                                   int64_t batch, int steps, bool use_ddp) {
  manual_seed(11);
  nn::Sequential G, D;
  G.push_back(std::make_shared<nn::Linear>(4, 8));
  G.push_back(std::make_shared<nn::Tanh>());
  G.push_back(std::make_shared<nn::Linear>(8, 6));
  D.push_back(std::make_shared<nn::Linear>(6, 8));
  D.push_back(std::make_shared<nn::Tanh>());
  D.push_back(std::make_shared<nn::Linear>(8, 1));
  std::unique_ptr<distributed::DataParallel> ddp_g, ddp_d;
  if (use_ddp) {
    ddp_g = std::make_unique<distributed::DataParallel>(G);
    ddp_d = std::make_unique<distributed::DataParallel>(D, distributed::DataParallelOptions{.bucket_mb = 1e-4});
  }
  optim::Adam opt_g(G.parameters(), {.lr = 1e-2}), opt_d(D.parameters(), {.lr = 1e-2});
  distributed::DistributedSampler shard(ds, world, rank, {.shuffle = true, .seed = 9});
  data::DataLoader loader(shard, {.batch_size = batch});
  int step = 0;
  for (int64_t epoch = 0; step < steps; ++epoch) {
    shard.set_epoch(epoch);
    for (const data::Example& b : loader) {  // input: real samples (B, 6); target: noise (B, 4)
      if (step == steps) break;
      opt_d.zero_grad();
      Tensor d_loss = sub(mean(D.forward(G.forward(b.target).detach())), mean(D.forward(b.input)));
      d_loss.backward();
      if (ddp_d) ddp_d->synchronize();
      opt_d.step();
      opt_g.zero_grad();
      {
        nn::FreezeParameters frozen(D.parameters());
        neg(mean(D.forward(G.forward(b.target)))).backward();
      }
      if (ddp_g) ddp_g->synchronize();
      opt_g.step();
      ++step;
    }
  }
  return {G.state_dict(), D.state_dict()};
}

}  // namespace

TEST_CASE("two DataParallel objects (a GAN's G and D) alternate: 2 ranks x B = 1 rank x 2B over 20 steps",
          "[distributed]") {
  need_mpi();
  Generator g(321);
  data::TensorDataset ds(randn({96, 6}, kFloat32, g), randn({96, 4}, kFloat32, g));
  const int64_t B = 8;
  const auto [got_g, got_d] = train_pair(ds, 2, distributed::rank(), B, 20, true);
  const auto [want_g, want_d] = train_pair(ds, 1, 0, 2 * B, 20, false);
  CHECK(max_diff(got_g, want_g) < 1e-5);
  CHECK(max_diff(got_d, want_d) < 1e-5);
  CHECK(identical_across_ranks(got_g));
  CHECK(identical_across_ranks(got_d));
  // a parameter may belong to one DataParallel only
  auto m = make_model(false, 4);
  distributed::DataParallel first(*m);
  CHECK_THROWS_WITH(distributed::DataParallel(*m), Catch::Contains("already belongs to another DataParallel"));
}
