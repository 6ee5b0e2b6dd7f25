// dist_fault: a data-parallel training loop in which one rank fails on purpose, for
// the ctest checks that the other ranks then stop with a clear error instead of
// waiting forever (tests/CMakeLists.txt runs it under mpirun with a time limit).
//
//   mpirun -np 2 dist_fault kill   # rank 1 dies (SIGKILL) at step 5: mpirun ends the job
//   mpirun -np 2 dist_fault hang   # rank 1 stops calling collectives at step 5: rank 0's
//                                  # gradient reduction times out (GENAI_DIST_TIMEOUT) and aborts
//   mpirun -np 2 dist_fault none   # no failure: 10 steps, exit code 0
#include <csignal>
#include <cstdio>
#include <cstring>
#include <memory>
#include <thread>

#include <genai/distributed/data_parallel.hpp>
#include <genai/nn/linear.hpp>
#include <genai/ops/loss.hpp>
#include <genai/optim/sgd.hpp>

using namespace genai;

int main(int argc, char** argv) {
  distributed::init(&argc, &argv);
  const char* mode = argc > 1 ? argv[1] : "none";
  const int rank = distributed::rank();
  manual_seed(1);
  nn::Sequential m;
  m.push_back(std::make_shared<nn::Linear>(8, 32));
  m.push_back(std::make_shared<nn::Tanh>());
  m.push_back(std::make_shared<nn::Linear>(32, 1));
  distributed::DataParallel ddp(m);
  optim::SGD opt(m.parameters(), {.lr = 0.01});
  Generator g(10 + static_cast<uint64_t>(rank));
  for (int step = 0; step < 10; ++step) {
    if (rank == 1 && step == 5) {
      if (std::strcmp(mode, "kill") == 0) {
        std::fprintf(stderr, "dist_fault: rank 1 kills itself at step 5\n");
        std::raise(SIGKILL);
      }
      if (std::strcmp(mode, "hang") == 0) {
        std::fprintf(stderr, "dist_fault: rank 1 hangs at step 5\n");
        std::this_thread::sleep_for(std::chrono::hours(1));
      }
    }
    Tensor x = randn({16, 8}, kFloat32, g);
    opt.zero_grad();
    Tensor loss = mse_loss(m.forward(x), sum(x, {1}, true));
    loss.backward();
    ddp.synchronize();
    opt.step();
    if (distributed::is_main()) std::printf("step %d loss %.4f\n", step, loss.item<double>());
  }
  distributed::barrier();
  if (distributed::is_main()) std::printf("dist_fault: finished\n");
  return 0;
}
