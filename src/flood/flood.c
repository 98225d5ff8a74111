/* `floodgate flood`: reads the settings, runs the load, writes the
 * reports (terminal summary on stdout, or JSON; optionally HTML). Exit
 * status: 0 after a run (whatever the server answered), 1 when the run
 * could not happen or a report could not be written, 2 for bad usage. */
#include "flood/flood.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static int write_file(const char *path, const struct fl_config *cfg, const struct fl_result *res,
                      int (*fn)(FILE *, const struct fl_config *, const struct fl_result *))
{
    FILE *f = fopen(path, "w");
    if (!f) {
        fprintf(stderr, "floodgate flood: cannot write %s: %s\n", path, strerror(errno));
        return -1;
    }
    int rc = fn(f, cfg, res);
    if (fclose(f) != 0 || rc != 0) {
        fprintf(stderr, "floodgate flood: cannot write %s\n", path);
        return -1;
    }
    return 0;
}

int fl_main(int argc, char **argv)
{
    struct fl_config cfg = {
        .conns = 10,
        .threads = 2,
        .duration_ms = FL_DEFAULT_DURATION_MS,
        .timeout_ms = FL_DEFAULT_TIMEOUT_MS,
    };
    int st = fl_config_from_args(&cfg, argc, argv);
    if (st >= 0) {
        fl_config_free(&cfg);
        return st;
    }
    if (!cfg.quiet) {
        fprintf(stderr, "flood: %s for %.1fs, %d threads, %d connections%s\n", cfg.target_str,
                (double)cfg.duration_ms / 1e3, cfg.threads, cfg.conns,
                cfg.open ? ", open loop" : ", closed loop");
    }
    struct fl_result res;
    if (fl_run(&cfg, &res) != 0) {
        fl_config_free(&cfg);
        return 1;
    }
    int status = 0;
    if (cfg.json) {
        if (cfg.json_file) {
            if (write_file(cfg.json_file, &cfg, &res, fl_report_json) != 0)
                status = 1;
        } else if (fl_report_json(stdout, &cfg, &res) != 0) {
            status = 1;
        }
    }
    if (!cfg.quiet && (!cfg.json || cfg.json_file))
        fl_report_text(stdout, &cfg, &res);
    if (cfg.html_file) {
        if (write_file(cfg.html_file, &cfg, &res, fl_report_html) != 0)
            status = 1;
        else if (!cfg.quiet)
            fprintf(stderr, "flood: HTML report written to %s\n", cfg.html_file);
    }
    fflush(stdout);
    fl_result_free(&res, &cfg);
    fl_config_free(&cfg);
    return status;
}
