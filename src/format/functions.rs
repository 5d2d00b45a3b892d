//! The template functions: Docker's (docker/cli `templates/templates.go`), Go's `print` and
//! `println` with Go's struct printing, and the stages the parsed template is given
//! ([`PRINT`], [`RANGE`], [`VALUE`]).

use gotmpl::{Template, TemplateError, Value};

use super::value::{go_json, go_string, is_struct};

/// The last stage of every printing action: the value as Go's `fmt.Fprint` writes it.
pub const PRINT: &str = "__minidock_print";
/// The last stage of a `range` pipeline: a struct cannot be ranged over, as in Go.
pub const RANGE: &str = "__minidock_range";
/// Applied to `printf`'s operands: structs, maps and lists become their printed text.
pub const VALUE: &str = "__minidock_value";

/// Go's own template functions (`text/template`'s builtins).
const GO_BUILTINS: &[&str] = &[
    "and", "call", "html", "index", "slice", "js", "len", "not", "or", "print", "printf",
    "println", "urlquery", "eq", "ge", "gt", "le", "lt", "ne",
];

/// Docker's template functions.
const DOCKER_FUNCTIONS: &[&str] = &[
    "json", "split", "join", "title", "lower", "upper", "pad", "truncate",
];

/// Whether a template may call `name`.
pub fn is_known(name: &str) -> bool {
    GO_BUILTINS.contains(&name) || DOCKER_FUNCTIONS.contains(&name)
}

type Result<T> = std::result::Result<T, TemplateError>;

fn error(message: String) -> TemplateError {
    TemplateError::Exec(message)
}

fn arity(name: &str, args: &[Value], expected: usize) -> Result<()> {
    if args.len() == expected {
        Ok(())
    } else {
        Err(TemplateError::ArgCount {
            name: name.to_owned(),
            expected,
            got: args.len(),
        })
    }
}

fn string_arg<'a>(name: &str, value: &'a Value) -> Result<&'a str> {
    value.as_str().ok_or_else(|| {
        error(format!(
            "{name}: wrong type for value; expected string; got {}",
            value.type_name()
        ))
    })
}

fn int_arg(name: &str, value: &Value) -> Result<i64> {
    match value {
        Value::Int(i) => Ok(*i),
        Value::Uint(u) => i64::try_from(*u).map_err(|_| error(format!("{name}: {u} is too big"))),
        other => Err(error(format!(
            "{name}: wrong type for value; expected int; got {}",
            other.type_name()
        ))),
    }
}

/// Go's `strings.Title`: a letter that follows a separator (anything but a letter, a digit
/// or `_`) is made upper case.
fn title(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut after_separator = true;
    for c in text.chars() {
        if after_separator {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        after_separator = !(c.is_alphanumeric() || c == '_');
    }
    out
}

/// Go's `fmt.Sprint`: a space between operands when neither is a string.
fn sprint(args: &[Value]) -> String {
    let mut out = String::new();
    for (i, arg) in args.iter().enumerate() {
        if i > 0 && !matches!(arg, Value::String(_)) && !matches!(args[i - 1], Value::String(_)) {
            out.push(' ');
        }
        out.push_str(&go_string(arg));
    }
    out
}

fn string(text: impl Into<std::sync::Arc<str>>) -> Value {
    Value::String(text.into())
}

// ANCHOR: functions
/// Installs Docker's template functions and Go's printing.
pub fn install(template: Template) -> Template {
    template
        .func("json", |args| {
            arity("json", args, 1)?;
            Ok(string(go_json(&args[0])))
        })
        .func("split", |args| {
            arity("split", args, 2)?;
            let (text, sep) = (
                string_arg("split", &args[0])?,
                string_arg("split", &args[1])?,
            );
            let parts: Vec<Value> = if sep.is_empty() {
                text.chars().map(|c| string(c.to_string())).collect()
            } else {
                text.split(sep).map(string).collect()
            };
            Ok(Value::List(parts.into()))
        })
        .func("join", |args| {
            arity("join", args, 2)?;
            let sep = string_arg("join", &args[1])?;
            match &args[0] {
                Value::List(items) => {
                    let items: Result<Vec<&str>> =
                        items.iter().map(|i| string_arg("join", i)).collect();
                    Ok(string(items?.join(sep)))
                }
                other => Err(error(format!(
                    "join: wrong type for value; expected []string; got {}",
                    other.type_name()
                ))),
            }
        })
        .func("title", |args| {
            arity("title", args, 1)?;
            Ok(string(title(string_arg("title", &args[0])?)))
        })
        .func("lower", |args| {
            arity("lower", args, 1)?;
            Ok(string(string_arg("lower", &args[0])?.to_lowercase()))
        })
        .func("upper", |args| {
            arity("upper", args, 1)?;
            Ok(string(string_arg("upper", &args[0])?.to_uppercase()))
        })
        .func("pad", |args| {
            arity("pad", args, 3)?;
            let text = string_arg("pad", &args[0])?;
            if text.is_empty() {
                return Ok(string(""));
            }
            let count = |v: &Value| -> Result<usize> {
                Ok(usize::try_from(int_arg("pad", v)?.max(0)).unwrap_or(0))
            };
            let (before, after) = (count(&args[1])?, count(&args[2])?);
            Ok(string(format!(
                "{}{text}{}",
                " ".repeat(before),
                " ".repeat(after)
            )))
        })
        .func("truncate", |args| {
            arity("truncate", args, 2)?;
            let text = string_arg("truncate", &args[0])?;
            let length = int_arg("truncate", &args[1])?;
            let Ok(length) = usize::try_from(length) else {
                return Err(error(format!("truncate: bad length {length}")));
            };
            if text.len() < length {
                return Ok(string(text));
            }
            // Go cuts bytes; a cut inside a character keeps the whole characters before it.
            let mut end = length;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            Ok(string(&text[..end]))
        })
        .func("print", |args| Ok(string(sprint(args))))
        .func("println", |args| {
            let parts: Vec<String> = args.iter().map(go_string).collect();
            Ok(string(parts.join(" ") + "\n"))
        })
        .func(PRINT, |args| {
            arity(PRINT, args, 1)?;
            Ok(match &args[0] {
                Value::String(s) => Value::String(s.clone()),
                other => string(go_string(other)),
            })
        })
        .func(RANGE, |args| {
            arity(RANGE, args, 1)?;
            if is_struct(&args[0]) {
                return Err(error(format!(
                    "range can't iterate over {}",
                    go_string(&args[0])
                )));
            }
            Ok(args[0].clone())
        })
        .func(VALUE, |args| {
            arity(VALUE, args, 1)?;
            Ok(match &args[0] {
                Value::Map(_) | Value::List(_) => string(go_string(&args[0])),
                other => other.clone(),
            })
        })
}
// ANCHOR_END: functions

/// Docker's `HeaderFunctions`: for the header row each function returns its first operand
/// (the column name) unchanged. A field without a column name prints `<no value>`, as Go
/// prints a missing key of a `map[string]string`.
pub fn install_header(template: Template) -> Template {
    let first = |args: &[Value]| Ok(args.first().cloned().unwrap_or(Value::Nil));
    DOCKER_FUNCTIONS
        .iter()
        .fold(template, |template, name| template.func(name, first))
        .func(PRINT, |args| {
            arity(PRINT, args, 1)?;
            Ok(match &args[0] {
                Value::Nil => string("<no value>"),
                other => string(go_string(other)),
            })
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn title_capitalises_words_as_go_does() {
        assert_eq!(title("hello world-wide web_x"), "Hello World-Wide Web_x");
    }
}
