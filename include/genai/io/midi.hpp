// genai/io/midi.hpp: Standard MIDI Files (SMF) — a writer and a reader.
//
// Follows the MIDI 1.0 Standard MIDI File specification (MIDI Manufacturers
// Association, "Standard MIDI-File Format Spec. 1.1"): a header chunk "MThd"
// (format 0, 1 or 2, number of tracks, ticks per quarter note) and one "MTrk"
// chunk per track, each a list of events with variable-length-quantity delta
// times. Channel messages (note on/off, controllers, program change, pitch bend,
// ...), meta events (tempo, track name, time signature, end of track, ...) and
// system exclusive messages are read; running status is understood; chunks of
// unknown type are skipped, as the specification asks. Malformed files raise
// genai::Error naming the file, the byte offset and what is wrong.
//
// The writer emits absolute-time events sorted by tick (note-offs before
// note-ons on the same tick, so repeated notes retrigger), without running
// status, and adds the end-of-track meta event when missing. midi_from_notes()
// builds a playable format-1 file (tempo track + one instrument track) from a
// list of notes; notes() pairs note-ons with note-offs back into notes.
// Not supported: SMPTE time division (negative division) in midi_from_notes and
// notes() timing (the reader keeps the raw division).
#pragma once

#include <algorithm>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "genai/config.hpp"
#include "genai/io/file.hpp"

namespace genai {
namespace io {

/// One event of a track, at an absolute time in ticks.
struct MidiEvent {
  int64_t tick = 0;
  uint8_t status = 0;          // 0x80..0xEF channel message, 0xFF meta, 0xF0 / 0xF7 system exclusive
  uint8_t meta_type = 0;       // meta events: 0x51 tempo, 0x03 track name, 0x2F end of track, ...
  std::vector<uint8_t> data;   // channel messages: 1 or 2 data bytes; meta / sysex: the payload

  int channel() const { return status & 0x0F; }
  bool is_meta() const { return status == 0xFF; }
  bool is_note_on() const { return (status & 0xF0) == 0x90 && data.size() == 2 && data[1] > 0; }
  /// A note-off, or a note-on with velocity 0 (which the specification defines as note-off).
  bool is_note_off() const {
    return data.size() == 2 && ((status & 0xF0) == 0x80 || ((status & 0xF0) == 0x90 && data[1] == 0));
  }
  int note() const { return data.empty() ? -1 : data[0]; }
  int velocity() const { return data.size() < 2 ? 0 : data[1]; }

  static MidiEvent note_on(int64_t tick, int channel, int note, int velocity) {
    return {tick, static_cast<uint8_t>(0x90 | (channel & 0x0F)), 0,
            {static_cast<uint8_t>(note & 0x7F), static_cast<uint8_t>(velocity & 0x7F)}};
  }
  static MidiEvent note_off(int64_t tick, int channel, int note, int velocity = 64) {
    return {tick, static_cast<uint8_t>(0x80 | (channel & 0x0F)), 0,
            {static_cast<uint8_t>(note & 0x7F), static_cast<uint8_t>(velocity & 0x7F)}};
  }
  static MidiEvent program_change(int64_t tick, int channel, int program) {
    return {tick, static_cast<uint8_t>(0xC0 | (channel & 0x0F)), 0, {static_cast<uint8_t>(program & 0x7F)}};
  }
  static MidiEvent meta(int64_t tick, uint8_t type, std::vector<uint8_t> payload) {
    return {tick, 0xFF, type, std::move(payload)};
  }
  /// Tempo in microseconds per quarter note (meta 0x51).
  static MidiEvent tempo(int64_t tick, uint32_t us_per_quarter) {
    return meta(tick, 0x51, {static_cast<uint8_t>(us_per_quarter >> 16), static_cast<uint8_t>(us_per_quarter >> 8),
                             static_cast<uint8_t>(us_per_quarter)});
  }
  static MidiEvent track_name(int64_t tick, const std::string& name) {
    return meta(tick, 0x03, std::vector<uint8_t>(name.begin(), name.end()));
  }
  static MidiEvent time_signature(int64_t tick, int numerator, int denominator_log2) {
    return meta(tick, 0x58, {static_cast<uint8_t>(numerator), static_cast<uint8_t>(denominator_log2), 24, 8});
  }
  static MidiEvent end_of_track(int64_t tick) { return meta(tick, 0x2F, {}); }
};

struct MidiTrack {
  std::vector<MidiEvent> events;  // absolute ticks, in file order
};

/// A note with absolute timing in ticks.
struct MidiNote {
  int64_t start = 0;     // tick of the note-on
  int64_t duration = 0;  // ticks until the note-off
  int pitch = 60;        // MIDI note number, 60 = middle C
  int velocity = 80;
  int channel = 0;
  bool operator==(const MidiNote& o) const {
    return start == o.start && duration == o.duration && pitch == o.pitch && velocity == o.velocity &&
           channel == o.channel;
  }
};

struct MidiFile {
  int format = 1;                // 0: one track; 1: simultaneous tracks; 2: independent sequences
  int ticks_per_quarter = 480;   // the header's division (negative: SMPTE, raw value)
  std::vector<MidiTrack> tracks;

  /// Microseconds per quarter note of the first tempo event (default 500000 = 120 bpm).
  uint32_t tempo() const {
    for (const auto& t : tracks)
      for (const auto& e : t.events)
        if (e.is_meta() && e.meta_type == 0x51 && e.data.size() == 3)
          return (uint32_t(e.data[0]) << 16) | (uint32_t(e.data[1]) << 8) | e.data[2];
    return 500000;
  }

  /// Every note of every track: note-ons paired with the next note-off of the same
  /// channel and pitch (first in, first out), sorted by start, then pitch.
  std::vector<MidiNote> notes() const {
    std::vector<MidiNote> out;
    for (const auto& t : tracks) {
      std::map<int, std::vector<size_t>> open;  // (channel, pitch) -> indices into out, oldest first
      for (const auto& e : t.events) {
        const int key = e.channel() * 128 + e.note();
        if (e.is_note_on()) {
          open[key].push_back(out.size());
          out.push_back({e.tick, 0, e.note(), e.velocity(), e.channel()});
        } else if (e.is_note_off()) {
          auto it = open.find(key);
          if (it == open.end() || it->second.empty()) continue;  // stray note-off
          MidiNote& n = out[it->second.front()];
          n.duration = e.tick - n.start;
          it->second.erase(it->second.begin());
        }
      }
    }
    std::stable_sort(out.begin(), out.end(), [](const MidiNote& a, const MidiNote& b) {
      return a.start != b.start ? a.start < b.start : a.pitch < b.pitch;
    });
    return out;
  }
};

namespace detail {

inline void midi_put_u32(std::vector<uint8_t>& o, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) o.push_back(static_cast<uint8_t>(v >> s));
}
inline void midi_put_u16(std::vector<uint8_t>& o, uint32_t v) {
  o.push_back(static_cast<uint8_t>(v >> 8));
  o.push_back(static_cast<uint8_t>(v));
}
/// Variable-length quantity: 7 bits per byte, most significant first, high bit = more.
inline void midi_put_vlq(std::vector<uint8_t>& o, uint32_t v) {
  GENAI_CHECK(v <= 0x0FFFFFFF, "save_midi: value ", v, " does not fit a MIDI variable-length quantity (max 2^28 - 1)");
  uint8_t buf[4];
  int n = 0;
  do {
    buf[n++] = static_cast<uint8_t>(v & 0x7F);
    v >>= 7;
  } while (v);
  while (n > 1) o.push_back(static_cast<uint8_t>(buf[--n] | 0x80));
  o.push_back(buf[0]);
}

/// Bytes of a channel message's data for a status byte (0x80..0xEF).
inline int midi_data_len(uint8_t status) {
  const uint8_t hi = status & 0xF0;
  return hi == 0xC0 || hi == 0xD0 ? 1 : 2;
}

/// A bounds-checked big-endian reader over a byte buffer.
struct MidiReader {
  const std::vector<uint8_t>& b;
  size_t pos;
  size_t end;
  const std::string& what;
  [[noreturn]] void fail(const std::string& msg) const {
    GENAI_FAIL("load_midi: '", what, "' is not a valid MIDI file: ", msg, " at byte offset ", pos);
  }
  void need(size_t n) const {
    if (n > end - pos) fail("unexpected end of " + std::string(end == b.size() ? "file" : "track chunk"));
  }
  uint8_t u8() {
    need(1);
    return b[pos++];
  }
  uint32_t u16() {
    need(2);
    uint32_t v = (uint32_t(b[pos]) << 8) | b[pos + 1];
    pos += 2;
    return v;
  }
  uint32_t u32() {
    need(4);
    uint32_t v = (uint32_t(b[pos]) << 24) | (uint32_t(b[pos + 1]) << 16) | (uint32_t(b[pos + 2]) << 8) | b[pos + 3];
    pos += 4;
    return v;
  }
  uint32_t vlq() {
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) {
      const uint8_t c = u8();
      v = (v << 7) | (c & 0x7F);
      if (!(c & 0x80)) return v;
    }
    fail("variable-length quantity longer than 4 bytes");
  }
  std::vector<uint8_t> bytes(size_t n) {
    need(n);
    std::vector<uint8_t> v(b.begin() + static_cast<std::ptrdiff_t>(pos), b.begin() + static_cast<std::ptrdiff_t>(pos + n));
    pos += n;
    return v;
  }
};

}  // namespace detail

/// The bytes of a Standard MIDI File.
inline std::vector<uint8_t> encode_midi(const MidiFile& f) {
  GENAI_CHECK(f.format >= 0 && f.format <= 2, "save_midi: format must be 0, 1 or 2, got ", f.format);
  GENAI_CHECK(f.format != 0 || f.tracks.size() == 1, "save_midi: a format-0 file has exactly one track, got ",
              f.tracks.size());
  GENAI_CHECK(!f.tracks.empty() && f.tracks.size() <= 65535, "save_midi: need 1 to 65535 tracks, got ", f.tracks.size());
  GENAI_CHECK(f.ticks_per_quarter > 0 && f.ticks_per_quarter < 0x8000, "save_midi: ticks_per_quarter must be in [1, 32767], got ",
              f.ticks_per_quarter);
  std::vector<uint8_t> o = {'M', 'T', 'h', 'd'};
  detail::midi_put_u32(o, 6);
  detail::midi_put_u16(o, static_cast<uint32_t>(f.format));
  detail::midi_put_u16(o, static_cast<uint32_t>(f.tracks.size()));
  detail::midi_put_u16(o, static_cast<uint32_t>(f.ticks_per_quarter));
  for (const auto& t : f.tracks) {
    std::vector<MidiEvent> ev = t.events;
    // by tick; on a tick: note-offs first, then the rest, end of track last
    auto rank = [](const MidiEvent& e) { return e.is_meta() && e.meta_type == 0x2F ? 2 : (e.is_note_off() ? 0 : 1); };
    std::stable_sort(ev.begin(), ev.end(), [&](const MidiEvent& a, const MidiEvent& b) {
      return a.tick != b.tick ? a.tick < b.tick : rank(a) < rank(b);
    });
    if (ev.empty() || !(ev.back().is_meta() && ev.back().meta_type == 0x2F))
      ev.push_back(MidiEvent::end_of_track(ev.empty() ? 0 : ev.back().tick));
    std::vector<uint8_t> body;
    int64_t prev = 0;
    for (const auto& e : ev) {
      GENAI_CHECK(e.tick >= 0, "save_midi: event at negative tick ", e.tick);
      GENAI_CHECK(!(e.is_meta() && e.meta_type == 0x2F) || &e == &ev.back(),
                  "save_midi: an end-of-track event before the last event of a track");
      detail::midi_put_vlq(body, static_cast<uint32_t>(e.tick - prev));
      prev = e.tick;
      if (e.status == 0xFF) {
        body.push_back(0xFF);
        body.push_back(e.meta_type & 0x7F);
        detail::midi_put_vlq(body, static_cast<uint32_t>(e.data.size()));
        body.insert(body.end(), e.data.begin(), e.data.end());
      } else if (e.status == 0xF0 || e.status == 0xF7) {
        body.push_back(e.status);
        detail::midi_put_vlq(body, static_cast<uint32_t>(e.data.size()));
        body.insert(body.end(), e.data.begin(), e.data.end());
      } else {
        GENAI_CHECK(e.status >= 0x80 && e.status <= 0xEF, "save_midi: invalid status byte ", int(e.status));
        GENAI_CHECK(static_cast<int>(e.data.size()) == detail::midi_data_len(e.status), "save_midi: status ",
                    int(e.status), " needs ", detail::midi_data_len(e.status), " data bytes, got ", e.data.size());
        body.push_back(e.status);
        for (uint8_t d : e.data) {
          GENAI_CHECK(d < 0x80, "save_midi: data byte ", int(d), " >= 128");
          body.push_back(d);
        }
      }
    }
    o.insert(o.end(), {'M', 'T', 'r', 'k'});
    detail::midi_put_u32(o, static_cast<uint32_t>(body.size()));
    o.insert(o.end(), body.begin(), body.end());
  }
  return o;
}

/// Parses the bytes of a Standard MIDI File; `what` names it in errors.
inline MidiFile decode_midi(const std::vector<uint8_t>& bytes, const std::string& what = "buffer") {
  detail::MidiReader r{bytes, 0, bytes.size(), what};
  if (bytes.size() < 14 || std::string(bytes.begin(), bytes.begin() + 4) != "MThd")
    r.fail("no 'MThd' header chunk (not a Standard MIDI File)");
  r.pos = 4;
  const uint32_t hlen = r.u32();
  if (hlen < 6) r.fail("header chunk shorter than 6 bytes");
  MidiFile f;
  const size_t hstart = r.pos;
  f.format = static_cast<int>(r.u16());
  const uint32_t ntracks = r.u16();
  const uint32_t division = r.u16();
  f.ticks_per_quarter = division & 0x8000 ? -static_cast<int>(division & 0x7FFF) : static_cast<int>(division);
  if (f.format > 2) r.fail("unknown format " + std::to_string(f.format));
  r.pos = hstart;
  r.need(hlen);
  r.pos = hstart + hlen;
  while (r.pos < bytes.size() && f.tracks.size() < ntracks) {
    r.need(8);
    const std::string id(bytes.begin() + static_cast<std::ptrdiff_t>(r.pos), bytes.begin() + static_cast<std::ptrdiff_t>(r.pos + 4));
    r.pos += 4;
    const uint32_t len = r.u32();
    r.need(len);
    if (id != "MTrk") {  // unknown chunk: skip
      r.pos += len;
      continue;
    }
    detail::MidiReader t{bytes, r.pos, r.pos + len, what};
    MidiTrack track;
    int64_t tick = 0;
    uint8_t running = 0;
    bool ended = false;
    while (t.pos < t.end && !ended) {
      tick += t.vlq();
      uint8_t status = t.u8();
      MidiEvent e;
      e.tick = tick;
      if (status == 0xFF) {
        e.status = 0xFF;
        e.meta_type = t.u8();
        e.data = t.bytes(t.vlq());
        ended = e.meta_type == 0x2F;
        running = 0;
      } else if (status == 0xF0 || status == 0xF7) {
        e.status = status;
        e.data = t.bytes(t.vlq());
        running = 0;
      } else {
        if (status < 0x80) {  // running status: this byte is the first data byte
          if (!running) t.fail("data byte without a running status");
          --t.pos;
          status = running;
        } else if (status >= 0xF0) {
          t.fail("unexpected system message " + std::to_string(int(status)) + " in a track");
        }
        running = status;
        e.status = status;
        const int n = detail::midi_data_len(status);
        for (int k = 0; k < n; ++k) {
          const uint8_t d = t.u8();
          if (d & 0x80) {
            --t.pos;
            t.fail("data byte >= 128");
          }
          e.data.push_back(d);
        }
      }
      track.events.push_back(std::move(e));
    }
    if (!ended) t.fail("track chunk without an end-of-track event");
    f.tracks.push_back(std::move(track));
    r.pos += len;
  }
  if (f.tracks.size() != ntracks)
    r.fail("the header announces " + std::to_string(ntracks) + " tracks, the file has " +
           std::to_string(f.tracks.size()));
  return f;
}

/// Writes `f` to `path` (atomically: temporary file + rename).
inline void save_midi(const std::string& path, const MidiFile& f) {
  std::vector<uint8_t> b = encode_midi(f);
  write_file_atomic(path, b.data(), b.size());
}

inline MidiFile load_midi(const std::string& path) {
  std::vector<unsigned char> raw = read_file(path, "load_midi");
  return decode_midi(std::vector<uint8_t>(raw.begin(), raw.end()), path);
}

/// A format-1 file that any player opens: track 0 holds the tempo (bpm), the time
/// signature and a name; track 1 the program (General MIDI instrument, 0 = piano)
/// and the notes.
inline MidiFile midi_from_notes(const std::vector<MidiNote>& notes, int ticks_per_quarter = 480, double bpm = 120,
                                int program = 0, const std::string& name = "genai") {
  GENAI_CHECK(bpm > 0, "midi_from_notes: bpm must be positive, got ", bpm);
  MidiFile f;
  f.format = 1;
  f.ticks_per_quarter = ticks_per_quarter;
  MidiTrack meta, music;
  meta.events.push_back(MidiEvent::track_name(0, name));
  meta.events.push_back(MidiEvent::time_signature(0, 4, 2));
  meta.events.push_back(MidiEvent::tempo(0, static_cast<uint32_t>(60e6 / bpm + 0.5)));
  int64_t last = 0;
  music.events.push_back(MidiEvent::program_change(0, 0, program));
  for (const auto& n : notes) {
    GENAI_CHECK(n.pitch >= 0 && n.pitch < 128 && n.velocity > 0 && n.velocity < 128 && n.duration > 0 && n.start >= 0,
                "midi_from_notes: invalid note (pitch ", n.pitch, ", velocity ", n.velocity, ", start ", n.start,
                ", duration ", n.duration, ")");
    music.events.push_back(MidiEvent::note_on(n.start, n.channel, n.pitch, n.velocity));
    music.events.push_back(MidiEvent::note_off(n.start + n.duration, n.channel, n.pitch));
    last = std::max(last, n.start + n.duration);
  }
  meta.events.push_back(MidiEvent::end_of_track(0));
  music.events.push_back(MidiEvent::end_of_track(last));
  f.tracks = {meta, music};
  return f;
}

}  // namespace io
}  // namespace genai
