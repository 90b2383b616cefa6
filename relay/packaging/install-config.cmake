# Installs the config and env templates into KEYRELAY_CONFIG_DIR (under DESTDIR), unless a file is already there:
# it holds the person's settings and, in keyrelay.env, the store key without which the stored tokens are lost.
# Modes as docs/deploy.md gives them: the relay runs as a dynamic user that reads only world-readable files, so the
# directory is 0755 and keyrelay.json 0644; keyrelay.env is 0600, read by systemd before the relay starts.
# file(INSTALL) adds DESTDIR by itself; the other file() calls need it spelled out.
set(dir "${KEYRELAY_CONFIG_DIR}")
set(staged "$ENV{DESTDIR}${KEYRELAY_CONFIG_DIR}")
if(NOT IS_DIRECTORY "${staged}")
  file(MAKE_DIRECTORY "${staged}")
  file(CHMOD "${staged}" PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE GROUP_READ GROUP_EXECUTE WORLD_READ
    WORLD_EXECUTE)
endif()
set(names keyrelay.json keyrelay.env)
set(modes 0644 0600)
foreach(name mode IN ZIP_LISTS names modes)
  if(EXISTS "${staged}/${name}")
    message(STATUS "Keeping: ${staged}/${name} (already there; the template is ${KEYRELAY_TEMPLATE_DIR}/${name})")
    continue()
  endif()
  if(mode STREQUAL "0600")
    set(perms OWNER_READ OWNER_WRITE)
  else()
    set(perms OWNER_READ OWNER_WRITE GROUP_READ WORLD_READ)
  endif()
  file(INSTALL "${KEYRELAY_TEMPLATE_DIR}/${name}" DESTINATION "${dir}" PERMISSIONS ${perms})
endforeach()
