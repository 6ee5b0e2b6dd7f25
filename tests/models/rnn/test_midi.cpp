// Tests of genai/io/midi.hpp: the writer's bytes against a hand-assembled file,
// writer -> reader round trips, the reader on running status, sysex, unknown
// chunks and velocity-0 note-offs, and clear errors on malformed files.
#include <filesystem>
#include <genai/io/midi.hpp>
#include <genai/models/rnn/music.hpp>
#include <string>
#include <vector>

#include "test_util.hpp"

using namespace genai;
using namespace genai::io;
using Catch::Matchers::Contains;

namespace {
std::vector<uint8_t> concat(std::initializer_list<std::vector<uint8_t>> parts) {
  std::vector<uint8_t> o;
  for (const auto& p : parts) o.insert(o.end(), p.begin(), p.end());
  return o;
}
std::vector<uint8_t> header(int format, int ntracks, int division) {
  return {'M', 'T', 'h', 'd', 0, 0, 0, 6, 0, static_cast<uint8_t>(format), 0, static_cast<uint8_t>(ntracks),
          static_cast<uint8_t>(division >> 8), static_cast<uint8_t>(division)};
}
std::vector<uint8_t> track(const std::vector<uint8_t>& body) {
  const uint32_t n = static_cast<uint32_t>(body.size());
  std::vector<uint8_t> o = {'M', 'T', 'r', 'k', static_cast<uint8_t>(n >> 24), static_cast<uint8_t>(n >> 16),
                            static_cast<uint8_t>(n >> 8), static_cast<uint8_t>(n)};
  o.insert(o.end(), body.begin(), body.end());
  return o;
}
}  // namespace

TEST_CASE("midi: the writer produces the specified bytes", "[midi]") {
  MidiFile f;
  f.format = 0;
  f.ticks_per_quarter = 96;
  MidiTrack t;
  t.events = {MidiEvent::note_on(0, 0, 60, 100), MidiEvent::note_off(200, 0, 60, 64)};
  f.tracks = {t};
  // delta 200 = VLQ 0x81 0x48
  const std::vector<uint8_t> want =
      concat({header(0, 1, 96), track({0x00, 0x90, 60, 100, 0x81, 0x48, 0x80, 60, 64, 0x00, 0xFF, 0x2F, 0x00})});
  CHECK(encode_midi(f) == want);
}

TEST_CASE("midi: notes survive a file round trip", "[midi]") {
  std::vector<MidiNote> notes = {{0, 240, 60, 80, 0}, {240, 240, 62, 90, 0}, {480, 960, 64, 70, 0},
                                 {480, 960, 67, 70, 0}, {1440, 120, 60, 80, 0}, {1560, 20000, 72, 80, 0}};
  MidiFile f = midi_from_notes(notes, 480, 100, 0, "test");
  const std::string path = std::filesystem::temp_directory_path() / "genai_test_roundtrip.mid";
  save_midi(path, f);
  MidiFile g = load_midi(path);
  std::filesystem::remove(path);
  CHECK(g.format == 1);
  CHECK(g.ticks_per_quarter == 480);
  REQUIRE(g.tracks.size() == 2);
  CHECK(g.tempo() == 600000);  // 100 bpm
  CHECK(g.notes() == notes);
}

TEST_CASE("midi: repeated notes on one tick retrigger (note-off first)", "[midi]") {
  std::vector<MidiNote> notes = {{0, 100, 60, 80, 0}, {100, 100, 60, 80, 0}};
  MidiFile g = decode_midi(encode_midi(midi_from_notes(notes)));
  CHECK(g.notes() == notes);
}

TEST_CASE("midi: the reader handles running status, sysex, unknown chunks, velocity-0 note-offs", "[midi]") {
  const std::vector<uint8_t> bytes = concat({
      header(1, 2, 480),
      {'X', 'Y', 'Z', 'W', 0, 0, 0, 3, 1, 2, 3},  // an unknown chunk: skipped
      track({0x00, 0xFF, 0x51, 0x03, 0x07, 0xA1, 0x20,  // tempo 500000
             0x00, 0xF0, 0x03, 0x7E, 0x7F, 0xF7,        // sysex
             0x00, 0xFF, 0x2F, 0x00}),
      track({0x00, 0xC0, 0x05,                          // program change (1 data byte)
             0x00, 0x90, 60, 90,                        // note on
             0x10, 62, 91,                              // running status: note on 62
             0x10, 60, 0,                               // running status: velocity 0 = note off
             0x10, 0x80, 62, 0,                         // note off
             0x00, 0xFF, 0x2F, 0x00}),
  });
  MidiFile f = decode_midi(bytes, "test");
  REQUIRE(f.tracks.size() == 2);
  CHECK(f.tempo() == 500000);
  CHECK(f.tracks[0].events[1].status == 0xF0);
  CHECK(f.tracks[0].events[1].data.size() == 3);
  CHECK(f.tracks[1].events[0].data.size() == 1);
  std::vector<MidiNote> notes = f.notes();
  REQUIRE(notes.size() == 2);
  CHECK(notes[0] == MidiNote{0, 32, 60, 90, 0});
  CHECK(notes[1] == MidiNote{16, 32, 62, 91, 0});
  // and the writer's output of what was read reads back the same
  CHECK(decode_midi(encode_midi(f)).notes() == notes);
}

TEST_CASE("midi: malformed files raise errors with the offset", "[midi]") {
  CHECK_THROWS_WITH(decode_midi({'R', 'I', 'F', 'F', 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, "x.mid"),
                    Contains("x.mid") && Contains("MThd"));
  // truncated track
  std::vector<uint8_t> b = concat({header(0, 1, 96), track({0x00, 0x90, 60, 100, 0x00, 0xFF, 0x2F, 0x00})});
  b.erase(b.end() - 3, b.end());  // cut the last 3 bytes
  CHECK_THROWS_WITH(decode_midi(b, "t.mid"), Contains("unexpected end") && Contains("byte offset"));
  // missing end of track
  CHECK_THROWS_WITH(decode_midi(concat({header(0, 1, 96), track({0x00, 0x90, 60, 100})}), "e.mid"),
                    Contains("end-of-track"));
  // data byte without running status
  CHECK_THROWS_WITH(decode_midi(concat({header(0, 1, 96), track({0x00, 60, 100, 0x00, 0xFF, 0x2F, 0x00})}), "r.mid"),
                    Contains("running status"));
  // too few tracks
  CHECK_THROWS_WITH(decode_midi(concat({header(1, 2, 96), track({0x00, 0xFF, 0x2F, 0x00})}), "n.mid"),
                    Contains("announces 2 tracks"));
  // VLQ too long
  CHECK_THROWS_WITH(decode_midi(concat({header(0, 1, 96), track({0xFF, 0xFF, 0xFF, 0xFF, 0x7F})}), "v.mid"),
                    Contains("variable-length"));
  CHECK_THROWS_WITH(load_midi("/nonexistent/file.mid"), Contains("cannot open"));
  CHECK_THROWS_WITH(midi_from_notes({{0, 0, 60, 80, 0}}), Contains("invalid note"));
}

TEST_CASE("midi: a generated melody is a valid file", "[midi][music]") {
  Generator g(4);
  auto mels = models::rnn::synthetic_melodies(2, g);
  std::vector<MidiNote> notes = models::rnn::events_to_notes(mels[0], 480);
  MidiFile f = decode_midi(encode_midi(midi_from_notes(notes, 480, 110, 0, "melody")));
  CHECK(f.notes() == notes);
}
