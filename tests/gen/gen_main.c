/* gen-vectors-v2 DIR: writes the version 2 vectors (tests/vectors-v2), deterministically: fixed seeds, a fixed clock. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gen.h"

static json_t *size_rows;

void gen_size_row(const char *what, const char *file, const char *vector, size_t bytes)
{
    json_array_append_new(size_rows, json_pack("{s:s, s:s, s:s, s:I}", "what", what, "file", file, "vector", vector,
                                               "bytes", (json_int_t)bytes));
}

void gen_file_sizes(const char *dir)
{
    json_t *j = json_pack("{s:s, s:o}", "note",
                          "datagram sizes of the byte budget (protocol-v2.md 8): each row is the length of a vector "
                          "that is accepted; URLs of 40 bytes, tracker name of 4, uid 4242, times below 2^32",
                          "rows", size_rows);
    gen_write(dir, "sizes.json", j);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: gen-vectors-v2 DIR\n");
        return 2;
    }
    json_t *keys = json_object();
    gen_keys(keys);
    gen_write(argv[1], "keys.json", json_pack("{s:s, s:o}", "kid_rule", "first 8 bytes of BLAKE2b-256(pk)", "keys", keys));
    size_rows = json_array();
    gen_file_keyring(argv[1]);
    gen_file_cert(argv[1]);
    gen_file_manifest(argv[1]);
    gen_file_peer(argv[1]);
    gen_file_wait(argv[1]);
    gen_file_tracker(argv[1]);
    gen_file_report(argv[1]);
    gen_file_sizes(argv[1]);
    return 0;
}
