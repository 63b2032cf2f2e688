/* template.h — the subset of Go's text/template that Docker users write in --format, over JSON.
 *
 * Text is copied (with \t, \n and \\ turned into a tab, a newline and a backslash, as Docker's
 * table formats do). Actions:
 *   {{.}}  {{.A.B}}             the value (fields of objects; a missing one is "<no value>")
 *   {{json .X}}                 X as compact JSON
 *   {{index .M "k"}} {{index .A 0}}
 *   {{join .A ", "}} {{upper .X}} {{lower .X}} {{len .X}}
 *   {{range .X}}...{{end}}      the body once per element of an array (or value of an object),
 *                               with . the element; {{else}} for an empty one
 *   {{if .X}}...{{else}}...{{end}}  Go's truth: false, 0, "", null, empty array/object are false
 *   {{- and -}}                 trim the white space before/after the action
 * Values print as Go's fmt does: strings bare, arrays "[a b]", objects "map[k:v ...]" (keys
 * sorted), null "<nil>". No variables, pipes or comparisons. */
#ifndef IMGFS_TEMPLATE_H
#define IMGFS_TEMPLATE_H

#include "util.h"

#include <jansson.h>

/* Render `tmpl` with `data` as dot: a malloc'd string in *out. EINVAL with the error's position
 * for a template outside the subset. */
int tmpl_render(const char *tmpl, json_t *data, char **out, struct imgfs_err *err);

/* Check the template's syntax without data (so a bad --format fails before any work). */
int tmpl_check(const char *tmpl, struct imgfs_err *err);

#endif
