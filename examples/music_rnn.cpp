// music_rnn: a note-event LSTM (models/rnn/music.hpp) trained on a corpus of
// melodies, generating a new melody written as a Standard MIDI File.
//
// Walkthrough:
//  1. The corpus: --melodies synthetic 8-bar melodies (scales, arpeggios and
//     dotted rhythms in random major / minor keys; docs/rnn.md explains why no
//     real corpus from a Debian package was used). Each event is (pitch or rest,
//     duration in sixteenths); melodies are separated by a whole-note rest.
//  2. Training: truncated BPTT over --batch streams of the event sequence,
//     windows of --seq-len events, loss = cross-entropy of the next pitch +
//     cross-entropy of its duration given the pitch; clip 1.0, Adam. Progress
//     bar, metrics.jsonl, checkpoint.safetensors (atomic), --resume.
//  3. Generation: prime with the first bar of a corpus melody, draw --events
//     events (pitch first, then its duration; temperature / top-k / top-p),
//     print them as they come, and write OUT/melody.mid (format 1, tempo track +
//     piano track), which any MIDI player opens; the file is read back with the
//     MIDI reader to check it.
//
//   music_rnn [--steps 600] [--melodies 2000] [--hidden 128] [--out DIR] [--events 64] [--temperature 0.9] [--resume]
//   music_rnn --generate --checkpoint DIR/checkpoint.safetensors
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>

#include <CLI/CLI.hpp>

#include <genai/genai.hpp>
#include <genai/io/midi.hpp>
#include <genai/models/rnn/music.hpp>

#include "distributed_util.hpp"
#include "example_util.hpp"

using namespace genai;
using namespace genai::models::rnn;

namespace {

const char* kNames[12] = {"C", "C#", "D", "D#", "E", "F", "F#", "G", "G#", "A", "A#", "B"};
std::string event_str(const NoteEvent& e) {
  std::string p = e.pitch < 0 ? "rest" : std::string(kNames[e.pitch % 12]) + std::to_string(e.pitch / 12 - 1);
  return p + "/" + std::to_string(e.duration);
}

struct Args {
  std::string out = "music_rnn_out", checkpoint;
  int64_t steps = 600, batch = 16, seq_len = 64, melodies = 2000, hidden = 128, layers = 2, events = 64, top_k = 0;
  int64_t eval_every = 100;
  double lr = 2e-3, temperature = 0.9, top_p = 1.0, bpm = 110;
  uint64_t seed = 0;
  bool resume = false, generate = false, distributed = false;
  int threads = 0;
};

NoteLSTMConfig config(const Args& a) {
  NoteLSTMConfig c;
  c.hidden_size = a.hidden;
  c.num_layers = a.layers;
  return c;
}

int write_melody(NoteLSTM& model, const std::vector<NoteEvent>& prime, const Args& a) {
  Generator gen(a.seed + 7);
  std::printf("prime:");
  for (const auto& e : prime) std::printf(" %s", event_str(e).c_str());
  std::printf("\ngenerated:");
  std::vector<NoteEvent> mel = generate_melody(model, prime, a.events, {a.temperature, a.top_k, a.top_p}, gen,
                                               [](const NoteEvent& e) {
                                                 std::printf(" %s", event_str(e).c_str());
                                                 std::fflush(stdout);
                                               });
  std::printf("\n");
  std::vector<NoteEvent> all = prime;
  all.insert(all.end(), mel.begin(), mel.end());
  std::vector<io::MidiNote> notes = events_to_notes(all, 480);
  const std::string path = a.out + "/melody.mid";
  io::save_midi(path, io::midi_from_notes(notes, 480, a.bpm, 0, "genai music_rnn"));
  io::MidiFile back = io::load_midi(path);  // check: the reader parses what the writer wrote
  GENAI_CHECK(back.notes() == notes, "music_rnn: the MIDI file did not read back as written");
  std::printf("wrote %s: %zu notes, %.1f s at %.0f bpm\n", path.c_str(), notes.size(),
              notes.empty() ? 0.0 : (notes.back().start + notes.back().duration) / 480.0 * 60.0 / a.bpm, a.bpm);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  CLI::App app{"music_rnn: train a note-event LSTM on melodies and write a generated melody as MIDI"};
  app.add_option("--out", a.out, "output directory")->capture_default_str();
  app.add_option("--steps", a.steps, "training steps")->capture_default_str();
  app.add_option("--batch", a.batch, "parallel streams per step")->capture_default_str();
  app.add_option("--seq-len", a.seq_len, "events per stream per step")->capture_default_str();
  app.add_option("--melodies", a.melodies, "synthetic melodies in the corpus")->capture_default_str();
  app.add_option("--hidden", a.hidden, "LSTM hidden size")->capture_default_str();
  app.add_option("--layers", a.layers, "LSTM layers")->capture_default_str();
  app.add_option("--lr", a.lr, "Adam learning rate")->capture_default_str();
  app.add_option("--eval-every", a.eval_every, "steps between metrics + checkpoint")->capture_default_str();
  app.add_option("--events", a.events, "events to generate")->capture_default_str();
  app.add_option("--temperature", a.temperature, "sampling temperature")->capture_default_str();
  app.add_option("--top-k", a.top_k, "top-k sampling (0: off)")->capture_default_str();
  app.add_option("--top-p", a.top_p, "nucleus sampling (1: off)")->capture_default_str();
  app.add_option("--bpm", a.bpm, "tempo of the MIDI file")->capture_default_str();
  app.add_option("--seed", a.seed, "random seed")->capture_default_str();
  app.add_flag("--resume", a.resume, "continue from OUT/checkpoint.safetensors");
  app.add_flag("--distributed", a.distributed,
               "data-parallel training over the processes of `mpirun -np N`: each reads its own part of the corpus "
               "with --batch streams; rank 0 evaluates and writes");
  app.add_flag("--generate", a.generate, "only generate, from --checkpoint");
  app.add_option("--checkpoint", a.checkpoint, "checkpoint for --generate");
  app.add_option("--threads", a.threads, "threads (0: GENAI_NUM_THREADS or all cores)");
  CLI11_PARSE(app, argc, argv);
  if (a.threads > 0) set_num_threads(a.threads);
  try {
    std::filesystem::create_directories(a.out);
    manual_seed(a.seed);
    Generator corpus_gen(a.seed + 100);
    std::vector<std::vector<NoteEvent>> mels = synthetic_melodies(a.melodies, corpus_gen);
    NoteVocab vocab;
    const int64_t n_val = std::max<int64_t>(1, a.melodies / 10);
    std::vector<std::vector<NoteEvent>> train_m(mels.begin(), mels.end() - n_val), val_m(mels.end() - n_val, mels.end());
    Tensor train_ids = encode_corpus(train_m, vocab), val_ids = encode_corpus(val_m, vocab);
    std::vector<NoteEvent> prime(mels.back().begin(), mels.back().begin() + 4);  // about a bar of a held-out melody

    if (a.generate) {
      if (a.checkpoint.empty()) {
        std::fprintf(stderr, "music_rnn --generate needs --checkpoint FILE\n");
        return 2;
      }
      io::Checkpoint ck = io::Checkpoint::load(a.checkpoint);
      Args c = a;
      c.hidden = ck.get_int("hidden_size");
      c.layers = ck.get_int("num_layers");
      NoteLSTM model(config(c));
      model.load_state_dict(ck.model());
      return write_melody(model, prime, a);
    }
    examples::Distributed dist(a.distributed);  // --distributed: one of mpirun's processes
    if (dist.world() > 1) {  // each process reads its own contiguous part of the training events
      const int64_t part = train_ids.size(0) / dist.world();
      train_ids = train_ids.narrow(0, dist.rank() * part, part);
    }
    NoteLSTM model(config(a));
    if (dist.is_main())
      std::printf("corpus: %zu synthetic melodies, %lld training / %lld validation events; %lld event types\n",
                mels.size(), static_cast<long long>(train_ids.size(0)), static_cast<long long>(val_ids.size(0)),
                static_cast<long long>(vocab.n_events()));
    optim::Adam opt(model.parameters(), {.lr = a.lr});
    StreamBatcher batcher(train_ids, a.batch, a.seq_len, a.seed + 1);
    const std::string ckpt = a.out + "/checkpoint.safetensors";
    int64_t step = 0;
    if (a.resume && std::filesystem::exists(ckpt)) {
      io::Checkpoint ck = io::Checkpoint::load(ckpt);
      model.load_state_dict(ck.model());
      opt.load_state_dict(ck.optim());
      ck.restore_generator("batcher", batcher.generator());
      batcher.set_position({ck.get_int("epoch"), ck.get_int("offset"), ck.get_int("pos")});
      step = ck.get_int("step");
      std::printf("resumed from %s at step %lld\n", ckpt.c_str(), static_cast<long long>(step));
    }
    dist.wrap(model);  // --distributed: rank 0's weights everywhere, gradients averaged by backward
    std::optional<train::MetricsLogger> log;  // rank 0 evaluates, logs and writes
    if (dist.is_main()) log.emplace(a.out + "/metrics.jsonl", train::MetricsFormat::Auto, a.resume);
    auto val_loss = [&] {
      NoGradGuard ng;
      model.eval();
      LSTMState st;
      const int64_t n = val_ids.size(0) - 1;
      Tensor l = note_loss(model, val_ids.narrow(0, 0, n).reshape({1, n}), val_ids.narrow(0, 1, n).reshape({1, n}), st);
      model.train();
      return l.item<double>();
    };
    train::ProgressBar bar(a.steps - step, {.desc = "train", .stream = dist.progress_stream()});
    LSTMState state;
    double sum = 0, t_steps = 0;
    const int64_t first_step = step;
    int64_t cnt = 0;
    while (step < a.steps) {
      StreamBatcher::Batch b = batcher.next();
      if (b.reset) state = LSTMState();
      const auto ts = std::chrono::steady_clock::now();
      const double loss = note_train_step(model, opt, b.x, b.y, state, 1.0);
      t_steps += std::chrono::duration<double>(std::chrono::steady_clock::now() - ts).count();
      ++step;
      examples::check_finite_loss(loss, step);
      sum += loss;
      ++cnt;
      bar.set_postfix("loss=" + std::to_string(loss));
      bar.update();
      if (step % a.eval_every == 0 || step == a.steps) {
        const double train_loss = dist.mean(sum / static_cast<double>(cnt));  // over all processes' batches
        sum = 0;
        cnt = 0;
        if (!dist.is_main()) continue;  // rank 0 evaluates and writes
        const double v = val_loss();
        log->log({{"step", step}, {"train_loss", train_loss}, {"val_loss", v}});
        std::fprintf(stderr, "\nstep %lld: train loss %.4f, validation loss %.4f (pitch + duration nats/event)\n",
                     static_cast<long long>(step), train_loss, v);
        io::Checkpoint ck;
        ck.model() = model.state_dict();
        ck.optim() = opt.state_dict();
        ck.set_generator("batcher", batcher.generator());
        std::vector<int64_t> pos = batcher.position();
        ck.ints = {{"step", step},          {"epoch", pos[0]},        {"offset", pos[1]},
                   {"pos", pos[2]},          {"hidden_size", a.hidden}, {"num_layers", a.layers}};
        ck.save(ckpt);
      }
    }
    bar.close();
    examples::report_step_time(dist, a.batch, step - first_step, t_steps);
    if (!dist.is_main()) return 0;
    return write_melody(model, prime, a);
  } catch (const Error& e) {
    std::fprintf(stderr, "music_rnn: %s\n", e.what());
    return 1;
  }
}
