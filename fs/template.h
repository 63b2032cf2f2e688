/* template.h — the subset of Go's text/template that Docker users write in --format, over JSON.
 *
 * Text is copied (with \t, \n and \\ turned into a tab, a newline and a backslash, as Docker's
 * table formats do). Actions:
 *   {{.}}  {{.A.B}}             the value (fields of objects; a missing one: see tmpl_render)
 *   {{json .X}}                 X as compact JSON
 *   {{index .M "k"}} {{index .A 0}}  (a missing key: "", Go's zero value for Docker's Labels)
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
 * for a template Go's parser refuses too (unclosed action, missing {{end}}, unknown function);
 * ENOTSUP for one Go takes but the subset has not (variables, pipes, printf, eq...).
 *
 * A field the data lacks is an error, as in Docker, whose values are Go structs (ENOENT, "map has
 * no entry for key \"Nope\""; a field of a string or a list too), unless `known` allows it:
 * `known` has the data's shape and says what Docker's value has that the data may lack — a key
 * of `known` missing from the data prints "<no value>", and `true` allows every key below it
 * (a Go map such as Labels: Docker prints "<no value>" for a missing key). A list's elements
 * take the list's node. NULL: every field must be in the data. Below a null, no value. */
int tmpl_render(const char *tmpl, json_t *data, json_t *known, char **out, struct imgfs_err *err);

/* Check the template's syntax without data (so a bad --format fails before any work). */
int tmpl_check(const char *tmpl, struct imgfs_err *err);

#endif
