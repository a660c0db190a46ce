cairn_fuzz_target(channel SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/fuzz_channel.c LIBS cairn_node_rpc)
