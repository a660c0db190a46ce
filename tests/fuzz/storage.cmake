# Fuzz targets of storage/: the shard and header parser, and the decoder behind it.
cairn_fuzz_target(shard SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/fuzz_shard.c LIBS cairn_storage)
