# keyrelay_wasm: the core as a JS module, from the same sources as the native build.
#   build/wasm/keyrelay.mjs + keyrelay.wasm   ES module for the browser (the page imports it)
#   build/wasm/keyrelay.cjs                   CommonJS for node, the .wasm embedded (-sSINGLE_FILE=1)
# Both export the factory createKeyrelay(); the JS API is in api.js, the bindings in bindings.cpp.
#
# Why SINGLE_FILE for node: under Node 20, Emscripten 3.1.6's loader sees the global fetch() and tries it on the
# .wasm file path ("Failed to parse URL"). With the binary embedded there is nothing to fetch, so
# `node -e "require('./build/wasm/keyrelay.cjs')().then(...)"` works with no flag and no wasmBinary option.

add_library(keyrelay_wasm_bindings OBJECT ${CMAKE_CURRENT_SOURCE_DIR}/bindings.cpp
  ${CMAKE_CURRENT_SOURCE_DIR}/value_json.cpp)
target_link_libraries(keyrelay_wasm_bindings PRIVATE keyrelay_core)
target_compile_options(keyrelay_wasm_bindings PRIVATE ${KEYRELAY_WARNINGS} -Os -fno-exceptions)
# The bindings are glue, kept small (-Os). value_json.cpp writes every decoded value, so it is built for speed like
# the core (shared/CMakeLists.txt): at -Os Emscripten 3.1.6 inlines not even std::string::push_back. A source's
# COMPILE_OPTIONS come after the target's, so this -O2 wins; -finline-functions undoes the -fno-inline-functions
# that em++ adds for any -Os on its command line.
set_source_files_properties(${CMAKE_CURRENT_SOURCE_DIR}/value_json.cpp PROPERTIES
  COMPILE_OPTIONS "-O2;-finline-functions")
# Exceptions stay off at link too: Emscripten's default (DISABLE_EXCEPTION_CATCHING=1) links no catching code,
# and the core never throws across its API (nlohmann/json is used through its non-throwing calls).

set(KEYRELAY_WASM_LINK
  --bind
  -Os
  -sMODULARIZE=1
  -sEXPORT_NAME=createKeyrelay
  -sFILESYSTEM=0
  -sALLOW_MEMORY_GROWTH=1
  -sMALLOC=emmalloc
  # embind without eval/new Function: the page works under a CSP without 'unsafe-eval'.
  -sDYNAMIC_EXECUTION=0
  -sINCOMING_MODULE_JS_API=[wasmBinary,locateFile,print,printErr]
  --post-js ${CMAKE_CURRENT_SOURCE_DIR}/api.js)

# The browser module. Emscripten writes keyrelay.wasm beside it and finds it through import.meta.url.
add_executable(keyrelay_wasm $<TARGET_OBJECTS:keyrelay_wasm_bindings>)
target_link_libraries(keyrelay_wasm PRIVATE keyrelay_core)
target_link_options(keyrelay_wasm PRIVATE ${KEYRELAY_WASM_LINK} -sEXPORT_ES6=1 -sENVIRONMENT=web)
set_target_properties(keyrelay_wasm PROPERTIES
  OUTPUT_NAME keyrelay SUFFIX .mjs RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}
  LINK_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/api.js)

# The node module.
add_executable(keyrelay_wasm_node $<TARGET_OBJECTS:keyrelay_wasm_bindings>)
target_link_libraries(keyrelay_wasm_node PRIVATE keyrelay_core)
target_link_options(keyrelay_wasm_node PRIVATE ${KEYRELAY_WASM_LINK} -sENVIRONMENT=node -sSINGLE_FILE=1)
# Linked in its own folder, then copied: a SINGLE_FILE link writes and then deletes <name>.wasm, which must not
# be the browser's build/wasm/keyrelay.wasm.
set_target_properties(keyrelay_wasm_node PROPERTIES
  OUTPUT_NAME keyrelay SUFFIX .cjs RUNTIME_OUTPUT_DIRECTORY ${CMAKE_CURRENT_BINARY_DIR}/node
  LINK_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/api.js)
add_custom_command(TARGET keyrelay_wasm_node POST_BUILD
  COMMAND ${CMAKE_COMMAND} -E copy_if_different $<TARGET_FILE:keyrelay_wasm_node> ${CMAKE_BINARY_DIR}/keyrelay.cjs
  VERBATIM)
add_dependencies(keyrelay_wasm_node keyrelay_wasm)

# Sizes, printed after each link as lines starting with "keyrelay." (scripts/test greps them from the build log).
add_custom_command(TARGET keyrelay_wasm_node POST_BUILD
  COMMAND ${CMAKE_COMMAND} -DDIR=${CMAKE_BINARY_DIR} -P ${CMAKE_CURRENT_SOURCE_DIR}/size.cmake
  VERBATIM)
