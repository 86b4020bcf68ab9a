/* sx_prim_misc.c: equality, booleans, output, error objects, raise and
 * error, apply and current-time-ms (SX.md 4, 5 and 9).
 *
 * Output goes to cx->out (stdout when unset) and is not flushed here; the
 * host flushes at the end of a run or request.
 *
 * The error accessors take any value: guard binds its variable to the raw
 * value of (raise v), so error-kind of a non-error is the symbol raised,
 * error-message its write form and error-payload the value itself.
 */
#include <time.h>

#include "vm/sx_core.h"

#define LOCAL_ARGS 16

/* ---- equality and booleans -------------------------------------------- */

static sx_val p_eqp(sx_ctx *cx, int argc, sx_val *argv)
{
    return sx_bool(argv[0] == argv[1]);
}

static sx_val p_eqvp(sx_ctx *cx, int argc, sx_val *argv)
{
    return sx_bool(sx_eqv(argv[0], argv[1]));
}

static sx_val p_equalp(sx_ctx *cx, int argc, sx_val *argv)
{
    return sx_bool(sx_equal(argv[0], argv[1]));
}

static sx_val p_not(sx_ctx *cx, int argc, sx_val *argv)
{
    return sx_bool(!sx_truthy(argv[0]));
}

static sx_val p_booleanp(sx_ctx *cx, int argc, sx_val *argv)
{
    return sx_bool(argv[0] == SX_TRUE || argv[0] == SX_FALSE);
}

static sx_val p_procedurep(sx_ctx *cx, int argc, sx_val *argv)
{
    return sx_bool(sx_is_procedure(argv[0]));
}

static sx_val p_void(sx_ctx *cx, int argc, sx_val *argv)
{
    return SX_NIL;
}

/* ---- output ----------------------------------------------------------------- */

static FILE *out_of(sx_ctx *cx)
{
    return cx->out ? cx->out : stdout;
}

static void emit(sx_ctx *cx, int argc, sx_val *argv, bool write, bool newline)
{
    sx_buf b;
    sx_buf_init(&b);
    for (int i = 0; i < argc; i++)
        sx_print(&b, argv[i], write);
    if (newline) sx_buf_addc(&b, '\n');
    if (b.len) fwrite(b.p, 1, b.len, out_of(cx));
    sx_buf_free(&b);
}

static sx_val p_display(sx_ctx *cx, int argc, sx_val *argv)
{
    emit(cx, argc, argv, false, false);
    return SX_NIL;
}

static sx_val p_write(sx_ctx *cx, int argc, sx_val *argv)
{
    emit(cx, argc, argv, true, false);
    return SX_NIL;
}

static sx_val p_newline(sx_ctx *cx, int argc, sx_val *argv)
{
    fputc('\n', out_of(cx));
    return SX_NIL;
}

static sx_val p_print(sx_ctx *cx, int argc, sx_val *argv)
{
    emit(cx, argc, argv, false, true);
    return SX_NIL;
}

static sx_val p_current_time_ms(sx_ctx *cx, int argc, sx_val *argv)
{
    struct timespec ts;
    cx->nondet_calls++; /* a run that saw the clock cannot be repeated exactly */
    clock_gettime(CLOCK_REALTIME, &ts);
    return sx_mkfix((int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000);
}

/* ---- error objects ---------------------------------------------------------- */

static bool is_error(sx_val v)
{
    return sx_is(v, SX_T_ERROR);
}

static sx_errobj *error_of(sx_val v)
{
    return SX_OBJ(sx_errobj, v);
}

static sx_val p_errorp(sx_ctx *cx, int argc, sx_val *argv)
{
    return sx_bool(is_error(argv[0]));
}

static sx_val p_error_kind(sx_ctx *cx, int argc, sx_val *argv)
{
    return is_error(argv[0]) ? error_of(argv[0])->kind : sx_intern_c("raised");
}

static sx_val p_error_message(sx_ctx *cx, int argc, sx_val *argv)
{
    return is_error(argv[0]) ? error_of(argv[0])->message : sx_to_string(argv[0], true);
}

static sx_val p_error_payload(sx_ctx *cx, int argc, sx_val *argv)
{
    return is_error(argv[0]) ? error_of(argv[0])->payload : argv[0];
}

static sx_val p_raise(sx_ctx *cx, int argc, sx_val *argv)
{
    sx_raise(cx, argv[0]);
}

/* (error msg irritant …): a user-error whose payload is the irritants. A
 * message that is not a string is used in its display form. */
static sx_val p_error(sx_ctx *cx, int argc, sx_val *argv)
{
    sx_val msg = sx_is_string(argv[0]) ? argv[0] : sx_to_string(argv[0], false);
    sx_val irritants = SX_NIL;
    for (int i = argc; i-- > 1;)
        irritants = sx_cons(argv[i], irritants);
    sx_raise(cx, sx_mkerror(sx_intern_c("user-error"), msg, irritants));
}

/* ---- apply ------------------------------------------------------------------- */

/* (apply f arg … list) */
static sx_val p_apply(sx_ctx *cx, int argc, sx_val *argv)
{
    sx_val tail = argv[argc - 1];
    long n = sx_list_length(tail);
    SX_CHECK(cx, sx_is_procedure(argv[0]) && n >= 0, "apply", "fn … list", argc, argv);
    size_t total = (size_t)(argc - 2) + (size_t)n;
    sx_val local[LOCAL_ARGS];
    sx_val *args = total <= LOCAL_ARGS ? local : sx_alloc((total + 1) * sizeof(sx_val));
    size_t k = 0;
    for (int i = 1; i < argc - 1; i++)
        args[k++] = argv[i];
    for (; sx_is_pair(tail); tail = SX_CDR(tail))
        args[k++] = SX_CAR(tail);
    return cx->apply(cx, argv[0], (int)total, args);
}

void sx__init_prims_misc(void)
{
    sx_defprim("eq?", p_eqp, 2, 2);
    sx_defprim("eqv?", p_eqvp, 2, 2);
    sx_defprim("equal?", p_equalp, 2, 2);
    sx_defprim("not", p_not, 1, 1);
    sx_defprim("boolean?", p_booleanp, 1, 1);
    sx_defprim("procedure?", p_procedurep, 1, 1);
    sx_defprim("void", p_void, 0, -1);
    sx_defprim("display", p_display, 1, 1);
    sx_defprim("write", p_write, 1, 1);
    sx_defprim("newline", p_newline, 0, 0);
    sx_defprim("print", p_print, 0, -1);
    sx_defprim("current-time-ms", p_current_time_ms, 0, 0);
    sx_defprim("error?", p_errorp, 1, 1);
    sx_defprim("error-kind", p_error_kind, 1, 1);
    sx_defprim("error-message", p_error_message, 1, 1);
    sx_defprim("error-payload", p_error_payload, 1, 1);
    sx_defprim("raise", p_raise, 1, 1);
    sx_defprim("error", p_error, 1, -1);
    sx_defprim("apply", p_apply, 2, -1);
}
