# keyrelay(1): help2man runs `keyrelay --help` and `--version`; each command's own --help becomes a section.
# cmake -DKEYRELAY=<binary> -DHELP2MAN=<help2man> -DGZIP=<gzip> -DOUT=<keyrelay.1.gz> -P manpage.cmake
get_filename_component(dir "${OUT}" DIRECTORY)
set(include "${dir}/keyrelay.h2m")
set(text "[DESCRIPTION]\nkeyrelay runs the OAuth 2.0 flows for Keap and Jira on your own server, keeps the tokens \
fresh and encrypted, and proxies allowlisted API calls, so that no secret or token reaches a browser.\n")
foreach(command serve doctor hash-password rotate-key migrate-store)
  execute_process(COMMAND "${KEYRELAY}" ${command} --help OUTPUT_VARIABLE usage RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "`keyrelay ${command} --help` failed (${rc})")
  endif()
  # roff: a backslash is \e; a line starting with . or ' would be a request.
  string(REPLACE "\\" "\\e" usage "${usage}")
  string(REGEX REPLACE "(^|\n)([.'])" "\\1\\\\&\\2" usage "${usage}")
  string(TOUPPER "${command}" title)
  string(APPEND text "\n[COMMAND ${title}]\n.nf\n${usage}.fi\n")
endforeach()
string(APPEND text "\n[FILES]\n.TP\n/etc/keyrelay/keyrelay.json\nthe config (no secrets)\n.TP\n\
/etc/keyrelay/keyrelay.env\nthe secrets, read by systemd (mode 0600)\n.TP\n/var/lib/keyrelay\n\
the encrypted token store\n.TP\n/usr/share/keyrelay/web\nthe page\n\
\n[SEE ALSO]\n/usr/share/doc/keyrelay/README.md, /usr/share/doc/keyrelay/docs/deploy.md\n")
file(WRITE "${include}" "${text}")
execute_process(COMMAND "${HELP2MAN}" --no-info --no-discard-stderr --section=1
    "--name=OAuth relay and allowlisted API proxy for Keap and Jira" "--include=${include}"
    --output=${dir}/keyrelay.1 "${KEYRELAY}"
  RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "help2man failed (${rc})")
endif()
execute_process(COMMAND "${GZIP}" -9nf "${dir}/keyrelay.1" RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "gzip failed (${rc})")
endif()
