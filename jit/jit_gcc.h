/* jit_gcc.h: libgccjit, loaded when the native tier first needs it.
 *
 * Linking libgccjit would make every sxpool process relocate it at start
 * (about 11 ms: some 150 000 relocations), the supervisor and the CEK
 * workers included, which never compile, and `eval` before its first
 * line. Instead jit/ calls libgccjit through the table below, which
 * jit_gcc_load fills with dlopen and dlsym; the compile thread loads it
 * while the program starts. The names read as libgccjit's own: each
 * gcc_jit_* function jit/ uses is a macro for its entry in the table, typed
 * from libgccjit.h's own declaration. A function used but missing from
 * the list fails to link (the library is not linked), so the list cannot
 * silently fall behind the code.
 */
#ifndef SXPOOL_JIT_GCC_H
#define SXPOOL_JIT_GCC_H

#include <stddef.h>

#include <libgccjit.h>

#define JIT_GCC_FUNCTIONS(X)                                                                       \
    X(block_add_assignment)                                                                        \
    X(block_add_eval)                                                                              \
    X(block_end_with_conditional)                                                                  \
    X(block_end_with_jump)                                                                         \
    X(block_end_with_return)                                                                       \
    X(context_acquire)                                                                             \
    X(context_add_command_line_option)                                                             \
    X(context_compile_to_file)                                                                     \
    X(context_get_builtin_function)                                                                \
    X(context_get_first_error)                                                                     \
    X(context_get_type)                                                                            \
    X(context_new_array_access)                                                                    \
    X(context_new_array_type)                                                                      \
    X(context_new_binary_op)                                                                       \
    X(context_new_bitcast)                                                                         \
    X(context_new_call)                                                                            \
    X(context_new_call_through_ptr)                                                                \
    X(context_new_cast)                                                                            \
    X(context_new_comparison)                                                                      \
    X(context_new_field)                                                                           \
    X(context_new_function)                                                                        \
    X(context_new_function_ptr_type)                                                               \
    X(context_new_opaque_struct)                                                                   \
    X(context_new_param)                                                                           \
    X(context_new_rvalue_from_int)                                                                 \
    X(context_new_rvalue_from_long)                                                                \
    X(context_new_unary_op)                                                                        \
    X(context_null)                                                                                \
    X(context_release)                                                                             \
    X(context_set_bool_allow_unreachable_blocks)                                                   \
    X(context_set_bool_use_external_driver)                                                        \
    X(context_set_int_option)                                                                      \
    X(function_get_address)                                                                        \
    X(function_new_block)                                                                          \
    X(function_new_local)                                                                          \
    X(lvalue_as_rvalue)                                                                            \
    X(lvalue_get_address)                                                                          \
    X(param_as_rvalue)                                                                             \
    X(rvalue_dereference)                                                                          \
    X(rvalue_dereference_field)                                                                    \
    X(rvalue_set_bool_require_tail_call)                                                           \
    X(struct_as_type)                                                                              \
    X(struct_set_fields)                                                                           \
    X(type_get_pointer)                                                                            \
    X(type_get_volatile)                                                                           \
    X(version_major)                                                                               \
    X(version_minor)                                                                               \
    X(version_patchlevel)

typedef struct jit_gcc_api {
#define JIT_GCC_FIELD(name) __typeof__(gcc_jit_##name) *name;
    JIT_GCC_FUNCTIONS(JIT_GCC_FIELD)
#undef JIT_GCC_FIELD
} jit_gcc_api;

/* Filled by jit_gcc_load; read only after it returned 0. */
extern jit_gcc_api jit_gcc;

/* Loads libgccjit once, whichever thread asks first (the others wait for
 * that load). @return 0, or -1 with why set to what an operator can act
 * on (the library or the symbol missing, and dlerror's words); every
 * later call gives the same answer */
int jit_gcc_load(char *why, size_t cap);

#define gcc_jit_block_add_assignment (jit_gcc.block_add_assignment)
#define gcc_jit_block_add_eval (jit_gcc.block_add_eval)
#define gcc_jit_block_end_with_conditional (jit_gcc.block_end_with_conditional)
#define gcc_jit_block_end_with_jump (jit_gcc.block_end_with_jump)
#define gcc_jit_block_end_with_return (jit_gcc.block_end_with_return)
#define gcc_jit_context_acquire (jit_gcc.context_acquire)
#define gcc_jit_context_add_command_line_option (jit_gcc.context_add_command_line_option)
#define gcc_jit_context_compile_to_file (jit_gcc.context_compile_to_file)
#define gcc_jit_context_get_builtin_function (jit_gcc.context_get_builtin_function)
#define gcc_jit_context_get_first_error (jit_gcc.context_get_first_error)
#define gcc_jit_context_get_type (jit_gcc.context_get_type)
#define gcc_jit_context_new_array_access (jit_gcc.context_new_array_access)
#define gcc_jit_context_new_array_type (jit_gcc.context_new_array_type)
#define gcc_jit_context_new_binary_op (jit_gcc.context_new_binary_op)
#define gcc_jit_context_new_bitcast (jit_gcc.context_new_bitcast)
#define gcc_jit_context_new_call (jit_gcc.context_new_call)
#define gcc_jit_context_new_call_through_ptr (jit_gcc.context_new_call_through_ptr)
#define gcc_jit_context_new_cast (jit_gcc.context_new_cast)
#define gcc_jit_context_new_comparison (jit_gcc.context_new_comparison)
#define gcc_jit_context_new_field (jit_gcc.context_new_field)
#define gcc_jit_context_new_function (jit_gcc.context_new_function)
#define gcc_jit_context_new_function_ptr_type (jit_gcc.context_new_function_ptr_type)
#define gcc_jit_context_new_opaque_struct (jit_gcc.context_new_opaque_struct)
#define gcc_jit_context_new_param (jit_gcc.context_new_param)
#define gcc_jit_context_new_rvalue_from_int (jit_gcc.context_new_rvalue_from_int)
#define gcc_jit_context_new_rvalue_from_long (jit_gcc.context_new_rvalue_from_long)
#define gcc_jit_context_new_unary_op (jit_gcc.context_new_unary_op)
#define gcc_jit_context_null (jit_gcc.context_null)
#define gcc_jit_context_release (jit_gcc.context_release)
#define gcc_jit_context_set_bool_allow_unreachable_blocks                                          \
    (jit_gcc.context_set_bool_allow_unreachable_blocks)
#define gcc_jit_context_set_bool_use_external_driver (jit_gcc.context_set_bool_use_external_driver)
#define gcc_jit_context_set_int_option (jit_gcc.context_set_int_option)
#define gcc_jit_function_get_address (jit_gcc.function_get_address)
#define gcc_jit_function_new_block (jit_gcc.function_new_block)
#define gcc_jit_function_new_local (jit_gcc.function_new_local)
#define gcc_jit_lvalue_as_rvalue (jit_gcc.lvalue_as_rvalue)
#define gcc_jit_lvalue_get_address (jit_gcc.lvalue_get_address)
#define gcc_jit_param_as_rvalue (jit_gcc.param_as_rvalue)
#define gcc_jit_rvalue_dereference (jit_gcc.rvalue_dereference)
#define gcc_jit_rvalue_dereference_field (jit_gcc.rvalue_dereference_field)
#define gcc_jit_rvalue_set_bool_require_tail_call (jit_gcc.rvalue_set_bool_require_tail_call)
#define gcc_jit_struct_as_type (jit_gcc.struct_as_type)
#define gcc_jit_struct_set_fields (jit_gcc.struct_set_fields)
#define gcc_jit_type_get_pointer (jit_gcc.type_get_pointer)
#define gcc_jit_type_get_volatile (jit_gcc.type_get_volatile)
#define gcc_jit_version_major (jit_gcc.version_major)
#define gcc_jit_version_minor (jit_gcc.version_minor)
#define gcc_jit_version_patchlevel (jit_gcc.version_patchlevel)

#endif
