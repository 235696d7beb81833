# Run after libmicrocrad.a is built (cmake -P, from a POST_BUILD step in CMakeLists.txt):
# makes the archive's internal symbols local, so they cannot clash with a program's.
#
# The library's internal functions (mc_alloc, mc_error, ...) are hidden, which keeps
# them out of the shared library's exports; but a static archive is a set of object
# files, and a hidden symbol is still global between objects: a program that defines
# its own mc_alloc gets a duplicate-definition error, or silently binds to the wrong
# one. So the objects are linked into one relocatable object (ld -r), where they see
# each other, and objcopy --localize-hidden then makes every hidden symbol local. The
# archive is rebuilt from that one object: only the MICROCRAD_API functions are left
# global.
#
# Expects: ARCHIVE (the .a), AR, LINKER (a GNU-compatible ld), OBJCOPY, WORK (scratch dir).
foreach(var ARCHIVE AR LINKER OBJCOPY WORK)
    if(NOT DEFINED ${var})
        message(FATAL_ERROR "localize_static.cmake: ${var} is not set")
    endif()
endforeach()

file(REMOVE_RECURSE "${WORK}")
file(MAKE_DIRECTORY "${WORK}/objects")

function(run)
    execute_process(COMMAND ${ARGV} RESULT_VARIABLE status WORKING_DIRECTORY "${WORK}/objects")
    if(NOT status EQUAL 0)
        message(FATAL_ERROR "localize_static.cmake: '${ARGV}' failed (${status})")
    endif()
endfunction()

run("${AR}" x "${ARCHIVE}")
file(GLOB objects "${WORK}/objects/*")
list(LENGTH objects n_objects)
if(n_objects EQUAL 0)
    message(FATAL_ERROR "localize_static.cmake: ${ARCHIVE} holds no objects")
endif()
set(combined "${WORK}/microcrad.o")
run("${LINKER}" -r -o "${combined}" ${objects})
run("${OBJCOPY}" --localize-hidden "${combined}")
file(REMOVE "${ARCHIVE}")
run("${AR}" rcs "${ARCHIVE}" "${combined}")
file(REMOVE_RECURSE "${WORK}")
