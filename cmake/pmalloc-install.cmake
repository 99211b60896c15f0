# Install rules and package files (included by the top-level CMakeLists.txt when
# PMALLOC_INSTALL is ON, the default for a top-level build).
#
# `cmake --install <build> [--prefix P]` installs:
#   include/pmalloc/*.h, *.hpp                   the public headers
#   lib/libpmalloc.a and lib/libpmalloc.so*      the library, static AND shared
#   lib/cmake/pmalloc/pmalloc-config.cmake,      the CMake package: find_package(pmalloc CONFIG)
#     pmalloc-config-version.cmake,              gives pmalloc::pmalloc (shared by default),
#     pmalloc-targets*.cmake                     pmalloc::pmalloc_shared, pmalloc::pmalloc_static
#   lib/pkgconfig/pmalloc.pc                     for pkg-config (relocatable: paths are relative
#                                                to the .pc file, so --prefix works)
# Components: pmalloc_runtime (libpmalloc.so.*) and pmalloc_development (everything else);
# `cmake --install <build> --component pmalloc_development` etc. installs one of them; a
# plain `cmake --install` installs both (and the programs of the examples, if built).
#
# Both variants are linked from the same object files: the `pmalloc` target (static
# unless BUILD_SHARED_LIBS is ON, as CMake users expect) is compiled once, and the other
# variant is linked from its objects (position-independent: CMAKE_POSITION_INDEPENDENT_CODE
# is ON), so installing both costs one extra link, not a second compilation.
include(CMakePackageConfigHelpers)

get_target_property(pmalloc_type pmalloc TYPE)
if(pmalloc_type STREQUAL "SHARED_LIBRARY")
  set(pmalloc_main pmalloc_shared)
  set(pmalloc_other pmalloc_static)
  set(pmalloc_other_kind STATIC)
else()
  set(pmalloc_main pmalloc_static)
  set(pmalloc_other pmalloc_shared)
  set(pmalloc_other_kind SHARED)
endif()

add_library(${pmalloc_other} ${pmalloc_other_kind} $<TARGET_OBJECTS:pmalloc>)
add_library(pmalloc::${pmalloc_other} ALIAS ${pmalloc_other})
add_library(pmalloc::${pmalloc_main} ALIAS pmalloc)
set_target_properties(pmalloc PROPERTIES EXPORT_NAME ${pmalloc_main})
set_target_properties(${pmalloc_other} PROPERTIES OUTPUT_NAME pmalloc EXPORT_NAME ${pmalloc_other} LINKER_LANGUAGE CXX)
target_include_directories(${pmalloc_other}
  PUBLIC $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/include> $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
target_compile_features(${pmalloc_other} PUBLIC cxx_std_20)
target_link_libraries(${pmalloc_other} PUBLIC Threads::Threads)
foreach(t pmalloc ${pmalloc_other})
  get_target_property(kind ${t} TYPE)
  if(kind STREQUAL "SHARED_LIBRARY")
    # 0.x: every minor release may change the ABI, so the soname carries major.minor.
    set_target_properties(${t} PROPERTIES VERSION ${PROJECT_VERSION}
                          SOVERSION ${PROJECT_VERSION_MAJOR}.${PROJECT_VERSION_MINOR})
  endif()
endforeach()

install(TARGETS pmalloc ${pmalloc_other} EXPORT pmalloc-targets
        ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT pmalloc_development
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT pmalloc_runtime
                NAMELINK_COMPONENT pmalloc_development
        RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT pmalloc_runtime)
install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/pmalloc DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
        COMPONENT pmalloc_development FILES_MATCHING PATTERN "*.h" PATTERN "*.hpp")

set(pmalloc_cmake_dir ${CMAKE_INSTALL_LIBDIR}/cmake/pmalloc)
install(EXPORT pmalloc-targets NAMESPACE pmalloc:: DESTINATION ${pmalloc_cmake_dir} FILE pmalloc-targets.cmake
        COMPONENT pmalloc_development)
configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/pmalloc-config.cmake.in
                              ${PROJECT_BINARY_DIR}/pmalloc-config.cmake
                              INSTALL_DESTINATION ${pmalloc_cmake_dir})
# 0.x: a minor release may break the API, so only the same major.minor is compatible.
write_basic_package_version_file(${PROJECT_BINARY_DIR}/pmalloc-config-version.cmake
                                 VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/pmalloc-config.cmake ${PROJECT_BINARY_DIR}/pmalloc-config-version.cmake
        DESTINATION ${pmalloc_cmake_dir} COMPONENT pmalloc_development)

# pkg-config: paths relative to the .pc file's own directory, so that the installed tree
# can be moved (and `cmake --install --prefix` works without reconfiguring).
set(pmalloc_pc_dir ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
if(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}" OR IS_ABSOLUTE "${CMAKE_INSTALL_INCLUDEDIR}")
  set(pmalloc_pc_prefix "${CMAKE_INSTALL_PREFIX}")
else()
  file(RELATIVE_PATH pmalloc_pc_up "/root/${pmalloc_pc_dir}" "/root")
  string(REGEX REPLACE "/$" "" pmalloc_pc_up "${pmalloc_pc_up}")
  set(pmalloc_pc_prefix "\${pcfiledir}/${pmalloc_pc_up}")
endif()
set(pmalloc_pc_libdir "${CMAKE_INSTALL_LIBDIR}")
set(pmalloc_pc_includedir "${CMAKE_INSTALL_INCLUDEDIR}")
if(NOT IS_ABSOLUTE "${pmalloc_pc_libdir}")
  set(pmalloc_pc_libdir "\${prefix}/${pmalloc_pc_libdir}")
endif()
if(NOT IS_ABSOLUTE "${pmalloc_pc_includedir}")
  set(pmalloc_pc_includedir "\${prefix}/${pmalloc_pc_includedir}")
endif()
configure_file(${CMAKE_CURRENT_LIST_DIR}/pmalloc.pc.in ${PROJECT_BINARY_DIR}/pmalloc.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/pmalloc.pc DESTINATION ${pmalloc_pc_dir} COMPONENT pmalloc_development)
