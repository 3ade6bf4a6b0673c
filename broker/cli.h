/*
 * cli: lanyard's command-line interface. Parses global options and one command, runs it, prints
 * results on stdout and errors on stderr, and returns the documented exit code: 0 ok,
 * 1 rejected or invalid input, 2 usage error, 3 internal or I/O error. It never exits itself.
 */
#ifndef CLI_H
#define CLI_H

/* Run the command line; returns the process exit code. */
int cli_main(int argc, char **argv);

#endif
