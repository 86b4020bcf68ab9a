/* supervisor.h: entry points of the supervisor module, called by sxpool's
 * main. Each returns the process exit status (0 ok, 1 failure, 2 usage). */
#ifndef SXPOOL_SUPERVISOR_H
#define SXPOOL_SUPERVISOR_H

#include <stdio.h>

/**
 * The server: sxpool [--workers=N] [--cek-workers=M] [--listen=HOST:PORT]
 * [--app=DIR] [--data=DIR] [--timeout=SECS] [--max-body=BYTES]
 * [--hide-errors] [--memory-limit=SIZE] [--jit-threshold=N]
 * [--jit-exclude=GLOB] [--store-size=SIZE]. argv[0] is the program name.
 * Runs until SIGINT or SIGTERM; SIGHUP reloads the app (sup_reload.c).
 */
int sup_main(int argc, char **argv);

/**
 * sxpool blacklist list [GLOB] [--abi=HASH] [--data=DIR]
 * sxpool blacklist clear [GLOB] [--data=DIR]
 * argv[0] is "blacklist".
 */
int sup_blacklist_main(int argc, char **argv);

/**
 * sxpool store migrate --store=URL | --data=DIR
 * Creates or upgrades the store's schema. argv[0] is "store".
 */
int sup_store_cli_main(int argc, char **argv);

/* Writes the command-line help to out. */
void sup_usage(FILE *out);

#endif
