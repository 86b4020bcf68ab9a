/* worker.h: entry points of the worker module, called by sxpool's main.
 * Each takes the arguments after the subcommand name and returns the
 * process exit status (0 ok, 1 program error, 2 usage error). */
#ifndef SXPOOL_WORKER_H
#define SXPOOL_WORKER_H

/* sxpool worker --slot=N --rundir=DIR --app=DIR --data=DIR --mode=jit|cek */
int wrk_main(int argc, char **argv);
/* sxpool eval [--tier=cek|vm|jit] FILE... */
int wrk_eval_main(int argc, char **argv);
/* sxpool repl */
int wrk_repl_main(int argc, char **argv);

#endif
