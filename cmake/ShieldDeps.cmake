# Dependencies, all from Debian packages: pkg-config where a .pc exists, the
# static library file where it does not (lua5.1-cjson's .pc requires a lua5.1.pc
# that LuaJIT does not provide), and llhttp compiled from node-llhttp's sources.
find_package(PkgConfig REQUIRED)
pkg_check_modules(LUAJIT REQUIRED IMPORTED_TARGET luajit)
pkg_check_modules(HIREDIS REQUIRED IMPORTED_TARGET hiredis)
pkg_check_modules(LIBPQ REQUIRED IMPORTED_TARGET libpq)
pkg_check_modules(LIBUV REQUIRED IMPORTED_TARGET libuv)
pkg_check_modules(LIBCURL REQUIRED IMPORTED_TARGET libcurl)

# jemalloc for the binary only, when installed (libjemalloc-dev): a worker makes
# ~30 small allocations per chunk (hiredis replies, LuaJIT strings), which glibc
# malloc serves at ~1 us per chunk more. ASan brings its own allocator.
if(NOT SHIELD_SANITIZE)
  pkg_check_modules(JEMALLOC IMPORTED_TARGET jemalloc)
endif()

find_library(LUA_CJSON_STATIC NAMES liblua5.1-cjson.a REQUIRED)

set(LLHTTP_SOURCE_DIR /usr/share/llhttp CACHE PATH "llhttp C sources (Debian node-llhttp)")
set(LLHTTP_INCLUDE_DIR /usr/share/include/llhttp CACHE PATH "llhttp header (Debian node-llhttp)")
add_library(llhttp STATIC
  ${LLHTTP_SOURCE_DIR}/llhttp.c ${LLHTTP_SOURCE_DIR}/api.c ${LLHTTP_SOURCE_DIR}/http.c)
target_include_directories(llhttp PUBLIC ${LLHTTP_INCLUDE_DIR})
# Generated third-party code: build it quietly.
target_compile_options(llhttp PRIVATE -w)

add_library(shield_deps INTERFACE)
target_link_libraries(shield_deps INTERFACE
  ${LUA_CJSON_STATIC} PkgConfig::LUAJIT PkgConfig::HIREDIS PkgConfig::LIBPQ
  PkgConfig::LIBUV PkgConfig::LIBCURL llhttp m)
