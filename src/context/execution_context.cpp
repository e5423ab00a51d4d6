#include "context/execution_context.hpp"

#include <cxxabi.h>

namespace erl::detail {

// __cxa_get_globals is declared const, so a caller may keep its result across a switch; the
// empty asm makes the address opaque, and noinline keeps that from being undone.
__attribute__((noinline)) eh_state* thread_eh_state() noexcept {
    auto* p = reinterpret_cast<eh_state*>(abi::__cxa_get_globals());
    asm volatile("" : "+r"(p));
    return p;
}

} // namespace erl::detail

#if ERLCPP_OWN_JUMP
// erlcpp_jump_fcontext: Boost.Context's jump_fcontext for x86-64 System V with the same context
// frame (so contexts made by make_fcontext run under it unchanged), but the floating-point
// control words are loaded only when they differ from the current ones: ldmxcsr and fldcw are
// microcoded and cost more than the rest of the switch, and processes almost never change the
// rounding mode or exception masks. The exception *flags* of MXCSR (its low six bits) stay with
// the thread (docs/semantics.md). Frame: mxcsr, x87 control word, r12-r15, rbx, rbp, return
// address; returns {the context left, its data} in rax:rdx, and passes them in rdi:rsi to a
// fresh context's entry function.
asm(R"(
    .pushsection .text
    .globl erlcpp_jump_fcontext
    .hidden erlcpp_jump_fcontext
    .type erlcpp_jump_fcontext,@function
    .align 16
erlcpp_jump_fcontext:
    leaq   -0x38(%rsp), %rsp
    stmxcsr (%rsp)
    fnstcw 0x4(%rsp)
    movq   %r12, 0x8(%rsp)
    movq   %r13, 0x10(%rsp)
    movq   %r14, 0x18(%rsp)
    movq   %r15, 0x20(%rsp)
    movq   %rbx, 0x28(%rsp)
    movq   %rbp, 0x30(%rsp)
    movq   %rsp, %rax
    movq   %rdi, %rsp
    movq   0x38(%rsp), %r8
    movl   (%rax), %ecx
    xorl   (%rsp), %ecx
    andl   $0xffc0, %ecx
    jne    2f
    movzwl 0x4(%rax), %ecx
    cmpw   0x4(%rsp), %cx
    jne    2f
1:
    movq   0x8(%rsp), %r12
    movq   0x10(%rsp), %r13
    movq   0x18(%rsp), %r14
    movq   0x20(%rsp), %r15
    movq   0x28(%rsp), %rbx
    movq   0x30(%rsp), %rbp
    leaq   0x40(%rsp), %rsp
    movq   %rsi, %rdx
    movq   %rax, %rdi
    jmp    *%r8
2:
    ldmxcsr (%rsp)
    fldcw  0x4(%rsp)
    jmp    1b
    .size erlcpp_jump_fcontext, .-erlcpp_jump_fcontext
    .popsection
)");
#endif
