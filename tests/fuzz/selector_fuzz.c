/*
 * selector_fuzz: libFuzzer target for the registration-entry selector parser. Every accepted
 * selector must format back to exactly its input (the parser refuses non-canonical spellings),
 * re-parse to an equal selector, pass the per-type check and the type-name table; every refusal
 * must be a parse error with a reason and a message. Deterministic: no clock, no randomness.
 * Target functions: entry_selector_parse, entry_selector_format, entry_selector_check,
 * entry_selector_cmp, entry_sel_type_name, entry_sel_type_parse, entry_add_selector.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../broker/entry.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The accepted selector must survive the round trip and the other entry points unchanged. */
static void check_accepted(const uint8_t *data, size_t size, const struct entry_selector *sel)
{
    struct entry_selector again;
    struct ly_error err;
    struct ly_buf out;
    enum entry_sel_type t;
    struct entry *e;
    size_t vlen;

    ly_error_clear(&err); /* ly_error keeps an earlier error: start from a clean one */
    if (sel->value == NULL) {
        abort();
    }
    vlen = strlen(sel->value);
    if (entry_selector_check(sel->type, sel->value, vlen, &err) != 0) {
        abort();
    }
    if (entry_sel_type_parse(entry_sel_type_name(sel->type), &t) != 0 || t != sel->type) {
        abort();
    }
    if (entry_selector_format(sel, &out, &err) != 0) {
        abort();
    }
    /* Canonical: no normalisation, so the formatted text is the input itself. */
    if (out.len != size || memcmp(out.data, data, size) != 0) {
        abort();
    }
    if (entry_selector_parse((const char *)out.data, out.len, &again, &err) != 0) {
        abort();
    }
    if (again.type != sel->type || entry_selector_cmp(&again, sel) != 0 ||
        strcmp(again.value, sel->value) != 0) {
        abort();
    }
    entry_selector_clear(&again);
    /* An entry takes the selector once and refuses it the second time as a duplicate. */
    e = entry_new();
    if (e == NULL) {
        abort();
    }
    if (entry_add_selector(e, (const char *)out.data, out.len, &err) != 0 ||
        entry_add_selector(e, (const char *)out.data, out.len, &err) == 0 ||
        err.reason != ENTRY_R_SEL_DUPLICATE || e->n_selectors != 1) {
        abort();
    }
    entry_free(e);
    ly_buf_free(&out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct entry_selector sel;
    struct ly_error err;

    ly_error_clear(&err);
    if (entry_selector_parse((const char *)data, size, &sel, &err) == 0) {
        check_accepted(data, size, &sel);
        entry_selector_clear(&sel);
        if (sel.value != NULL) {
            abort(); /* clear must reset what it frees */
        }
    } else {
        if (err.code != LY_ERR_PARSE || err.reason == 0 || err.msg[0] == '\0' ||
            sel.value != NULL) {
            abort();
        }
    }
    return 0;
}
