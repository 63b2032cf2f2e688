/* test_template.c — the Go-template subset of --format (fs/template.c): what Docker users write,
 * printed as Go prints it, and templates outside the subset refused with their position. */
#include "../../fs/template.h"
#include "unit.h"

#include <string.h>

static json_t *data, *known;

static void expect(const char *tmpl, const char *want)
{
    struct imgfs_err err = {0};
    char *out = NULL;
    int r = tmpl_render(tmpl, data, known, &out, &err);
    CHECK(r == 0 && out && !strcmp(out, want), "%s -> [%s] (%s), want [%s]", tmpl,
          out ? out : "(null)", err.msg, want);
    CHECK(tmpl_check(tmpl, &err) == 0, "check %s: %s", tmpl, err.msg);
    free(out);
}

static void refuse_code(const char *tmpl, const char *msg_part, int code)
{
    struct imgfs_err err = {0};
    char *out = NULL;
    int r = tmpl_render(tmpl, data, known, &out, &err);
    CHECK(r < 0 && err.code == code && strstr(err.msg, msg_part), "%s: r=%d code=%d msg=%s", tmpl,
          r, err.code, err.msg);
    if (!strstr(msg_part, "range")) /* a value's error, not the syntax's */
        CHECK(tmpl_check(tmpl, &err) < 0, "check accepted %s", tmpl);
    free(out);
}

/* Go's parser refuses it too (EINVAL) */
static void refuse(const char *tmpl, const char *msg_part)
{
    refuse_code(tmpl, msg_part, EINVAL);
}

/* Go's parser takes it, the subset does not (ENOTSUP) */
static void unsupported(const char *tmpl, const char *msg_part)
{
    refuse_code(tmpl, msg_part, ENOTSUP);
}

/* a field the data lacks: an error of the value (ENOENT), the syntax being fine */
static void missing(const char *tmpl, const char *msg_part)
{
    struct imgfs_err err = {0};
    char *out = NULL;
    int r = tmpl_render(tmpl, data, known, &out, &err);
    CHECK(r < 0 && err.code == ENOENT && strstr(err.msg, msg_part), "%s: r=%d msg=%s", tmpl, r,
          err.msg);
    CHECK(tmpl_check(tmpl, &err) == 0, "check refused %s: %s", tmpl, err.msg);
    free(out);
}

int main(void)
{
    json_error_t je;
    data = json_loads("{\"Id\":\"abc\",\"Name\":\"/web\",\"State\":{\"Status\":\"running\","
                      "\"Pid\":42,\"Running\":true,\"Error\":\"\"},"
                      "\"Config\":{\"Env\":[\"A=1\",\"PATH=/bin\"],\"Cmd\":null,"
                      "\"Labels\":{\"b\":\"2\",\"a\":\"1\"},\"Empty\":[]},"
                      "\"Mounts\":[{\"Source\":\"/h\",\"Destination\":\"/c\"},"
                      "{\"Source\":\"/x\",\"Destination\":\"/y\"}],\"Ratio\":0.5}",
                      0, &je);
    CHECK(data != NULL, "test data: %s", je.text);

    expect("{{.Id}}", "abc");
    expect("{{ .State.Status }}", "running");
    expect("{{.State.Pid}} {{.State.Running}}", "42 true");
    expect("id={{.Id}}\\tname={{.Name}}\\n", "id=abc\tname=/web\n");
    expect("{{.Config.Env}}", "[A=1 PATH=/bin]");
    expect("{{.Config.Labels}}", "map[a:1 b:2]");
    expect("{{.Config.Cmd}}", "<nil>");
    expect("{{.Config.Cmd.Deeper}}", "<no value>"); /* below a null */
    expect("{{json .Config.Env}}", "[\"A=1\",\"PATH=/bin\"]");
    expect("{{json .State}}",
           "{\"Status\":\"running\",\"Pid\":42,\"Running\":true,\"Error\":\"\"}");
    expect("{{json .Config.Cmd}}", "null");
    expect("{{index .Config.Labels \"b\"}}", "2");
    expect("{{index .Config.Env 1}}", "PATH=/bin");
    expect("{{join .Config.Env \",\"}}", "A=1,PATH=/bin");
    expect("{{upper .State.Status}} {{len .Mounts}}", "RUNNING 2");
    expect("{{range .Mounts}}{{.Source}}:{{.Destination}} {{end}}", "/h:/c /x:/y ");
    expect("{{range .Config.Empty}}x{{else}}none{{end}}", "none");
    expect("{{range .Config.Labels}}{{.}};{{end}}", "1;2;");
    expect("{{if .State.Running}}up{{else}}down{{end}}", "up");
    expect("{{if .State.Error}}err{{else}}ok{{end}}", "ok");
    expect("{{with .State}}{{.Pid}}{{end}}", "42");
    expect("a  {{- .Id -}}  b", "aabcb");
    expect("{{.Ratio}}", "0.5");
    expect("{{.}}", "map[Config:map[Cmd:<nil> Empty:[] Env:[A=1 PATH=/bin] Labels:map[a:1 b:2]] "
                    "Id:abc Mounts:[map[Destination:/c Source:/h] map[Destination:/y Source:/x]] "
                    "Name:/web Ratio:0.5 State:map[Error: Pid:42 Running:true Status:running]]");
    expect("{{ \"}}\" }}", "}}");
    expect("plain text", "plain text");

    refuse("{{.Id", "unclosed action");
    refuse("{{range .Mounts}}x", "missing {{end}}");
    refuse("{{end}}", "outside a block");
    unsupported("{{$x := .Id}}", "unsupported syntax");
    unsupported("{{.Id | printf}}", "unsupported syntax");
    unsupported("{{printf \"%s\" .Id}}", "unknown function");
    unsupported("{{if eq .Id \"x\"}}{{end}}", "unknown function");
    refuse("{{nosuch .Id}}", "unknown function");
    refuse("{{index .Config.Env 9}}", "out of range");
    refuse("{{if .Config.Cmd}}{{nosuch}}{{end}}", "unknown function"); /* in a block not taken */

    /* fields Docker's values do not have are errors, as Docker's; `known` names what they have */
    missing("{{.Nope}}", "map has no entry for key \"Nope\"");
    missing("{{.State.Nope.Deeper}}", "<.State.Nope.Deeper>: map has no entry for key \"Nope\"");
    missing("{{.Name.Foo}}", "can't evaluate field \"Foo\"");
    missing("{{json .Nope}}", "no entry for key");
    missing("{{if .Nope}}x{{end}}", "no entry for key");
    missing("{{range .Mounts}}{{.Nope}}{{end}}", "no entry for key");
    missing("{{index .Nope \"a\"}}", "no entry for key");
    known = json_loads("{\"Health\": true, \"Config\": {\"Labels\": true, \"Volumes\": true},"
                       " \"Mounts\": {\"RW\": true}}",
                       0, NULL);
    expect("{{.Health}}|{{.Health.Status}}", "<no value>|<no value>");
    expect("{{.Config.Labels.zz}}|{{index .Config.Labels \"zz\"}}", "<no value>|");
    expect("{{with .Config.Labels}}{{.a}}{{.zz}}{{end}}", "1<no value>");
    expect("{{.Config.Volumes}}", "<no value>");
    expect("{{range .Mounts}}{{.RW}}{{end}}", "<no value><no value>");
    missing("{{.Config.Nope}}", "no entry for key \"Nope\"");
    missing("{{range .Mounts}}{{.Nope}}{{end}}", "no entry for key");
    missing("{{with .State}}{{.Nope}}{{end}}", "no entry for key");
    json_decref(known);
    refuse("{{\"abc}}", "unclosed action");
    json_decref(data);
    return unit_summary();
}
