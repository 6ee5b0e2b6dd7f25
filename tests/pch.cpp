// Compiled once to build the precompiled header (test_util.hpp) the tests reuse.
