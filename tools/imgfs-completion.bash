# bash completion for imgfs — source it, or install it as /usr/share/bash-completion/completions/imgfs.
# The commands and flags come from imgfs's own --help texts at completion time, so they are always
# those of the binary on PATH; containers and images come from `imgfs ps -a -q` / `imgfs images`.
_imgfs() {
    local cur=${COMP_WORDS[COMP_CWORD]}
    local bin=${COMP_WORDS[0]}
    local i verb=""
    for ((i = 1; i < COMP_CWORD; i++)); do
        case ${COMP_WORDS[i]} in
        --root | --run-dir) ((i++)) ;;
        -*) ;;
        *) verb=${COMP_WORDS[i]}; break ;;
        esac
    done
    if [[ -z $verb ]]; then
        if [[ $cur == -* ]]; then
            COMPREPLY=($(compgen -W "--root --run-dir --help --version" -- "$cur"))
        else
            COMPREPLY=($(compgen -W "$("$bin" --help 2>/dev/null |
                awk '/^Commands:/ {on=1; next} on && /^  [a-z]/ {print $1}')" -- "$cur"))
        fi
        return
    fi
    if [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$("$bin" "$verb" --help 2>/dev/null |
            grep -oE '^ +(-[a-zA-Z], )?--[a-z][a-z0-9-]*' | grep -oE -- '--[a-z][a-z0-9-]*$|^ +-[a-zA-Z]' |
            tr -d ' ')" -- "$cur"))
        return
    fi
    local names=""
    case $verb in
    exec | logs | stop | kill | rm | wait | start | restart | port | top | stats | rename | cp | commit | attach | diff)
        names=$("$bin" ps -a -q 2>/dev/null) ;;
    inspect)
        names="$("$bin" ps -a --format '{{.Names}}' 2>/dev/null) $("$bin" images 2>/dev/null | awk 'NR > 1 && $1 != "<none>" {print $1 ":" $2}')" ;;
    run | create | mount | tag | rmi | export | save | push | history)
        names=$("$bin" images 2>/dev/null | awk 'NR > 1 && $1 != "<none>" {print $1 ($2 != "" && $2 != "<none>" ? ":" $2 : "")}') ;;
    esac
    if [[ -n $names ]]; then
        COMPREPLY=($(compgen -W "$names" -- "$cur"))
    else
        COMPREPLY=($(compgen -f -- "$cur"))
    fi
}
complete -F _imgfs imgfs
