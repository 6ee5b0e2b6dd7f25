/* stb_image compiled into the image fuzzer, instrumented (Debian's libstb.so is
   not); the executable's definitions take precedence over the shared library's. */
#define STB_IMAGE_IMPLEMENTATION
#if __has_include(<stb/stb_image.h>)
#include <stb/stb_image.h>
#else
#include <stb_image.h>
#endif
