// libFuzzer target: Standard MIDI Files (io::decode_midi, behind io::load_midi),
// then MidiFile::notes() and, for files that parse, encode_midi + decode_midi
// again: a file genai wrote must read back with the same tracks.
#include <genai/io/midi.hpp>

#include "fuzz_common.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  genai::io::MidiFile f;
  try {
    f = genai::io::decode_midi(std::vector<uint8_t>(data, data + size), "fuzz.mid");
  } catch (const genai::Error&) {
    return 0;
  }
  (void)f.notes();
  std::vector<uint8_t> again;
  try {
    again = genai::io::encode_midi(f);
  } catch (const genai::Error&) {
    return 0;
  }
  genai::io::MidiFile g;
  try {
    g = genai::io::decode_midi(again, "re-encoded");
  } catch (const genai::Error& e) {
    std::fprintf(stderr, "%s\n", e.what());
    genai_fuzz::require(false, "a file written by encode_midi does not read back");
  }
  genai_fuzz::require(g.tracks.size() == f.tracks.size(), "re-encoded file has a different number of tracks");
  return 0;
}
