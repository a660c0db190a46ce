# The gateway's request parser (gateway/parse.c over libhttp-parser).
cairn_fuzz_target(http_request SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/fuzz_http_request.c
                  LIBS cairn_gateway_http_internal)
