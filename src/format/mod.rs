//! `--format`: Go's text/template with Docker's functions, for every command that takes it
//! (`inspect`, `image inspect`, `ps`, `images`, `history`), and Docker's `table` directive.
//!
//! Templates are parsed and run by the `gotmpl` crate (a port of Go's `text/template`). Docker
//! runs them over Go structs, which print and encode differently from maps ([`value`]); so
//! after parsing, every action that prints is given a last pipeline stage that prints the
//! value as Go's `fmt` would, and `printf`'s operands are printed the same way first.
//!
//! Docker's functions (docker/cli `templates.go`): `json`, `join`, `split`, `lower`, `upper`,
//! `title`, `pad`, `truncate`, with Go's own (`index`, `len`, `printf`, `println`, `eq`...).
//! In the list commands a format starting with `table` prints a header row (each field's
//! column name) and aligns the columns with [`table::tabwrite`], and `\t` and `\n` in the
//! format stand for a tab and a newline, as Docker's formatter does.
//!
//! Errors, parse or execution, read `template parsing error: ...`, as Docker's CLI says them.
//! A template that does not parse makes `inspect` and `image inspect` exit 64
//! ([`BAD_TEMPLATE`], Docker's `cli.StatusError{StatusCode: 64}`); every other template error
//! exits 1, as in `docker ps`, `images` and `history`.

pub mod table;
pub mod value;

use std::sync::Arc;

use anyhow::{Result, anyhow};
use gotmpl::parse::{CommandNode, Expr, ListNode, Node, Parser, PipeNode, SmolStr};
use gotmpl::{MissingKey, Template, Value};

pub use table::tabwrite;
pub use value::{Json, Shape, go_json, go_string, is_struct, to_value};

/// The exit code of `inspect` and `image inspect` for a template that does not parse
/// (sysexits' `EX_USAGE`, as docker/cli's inspect returns it).
pub const BAD_TEMPLATE: u8 = 64;

/// The name of the parsed body inside the executable template.
const MAIN: &str = "format";

/// A parsed `--format` value.
pub struct Format {
    body: Template,
    /// The same template with Docker's header functions, for a `table` format's header row.
    header: Option<Template>,
}

impl Format {
    /// A format as `inspect` and `image inspect` take it: the template as given.
    pub fn inspect(text: &str) -> Result<Format> {
        Ok(Format {
            body: compile(text, false)?,
            header: None,
        })
    }

    /// A format as `ps`, `images` and `history` take it: `table` makes a header row and
    /// aligned columns, `\t` and `\n` are a tab and a newline. `table` alone is the
    /// command's `default_table`.
    pub fn list(text: &str, default_table: &str) -> Result<Format> {
        let (table, rest) = match text.strip_prefix("table") {
            Some("") => (true, default_table),
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let body = rest
            .trim_matches(' ')
            .replace("\\t", "\t")
            .replace("\\n", "\n");
        Ok(Format {
            header: table.then(|| compile(&body, true)).transpose()?,
            body: compile(&body, false)?,
        })
    }

    /// Whether this is a `table` format.
    pub fn is_table(&self) -> bool {
        self.header.is_some()
    }

    /// Runs the template over one value.
    pub fn execute(&self, data: &Value) -> Result<String> {
        self.body
            .execute_to_string(data)
            .map_err(|err| anyhow!("template parsing error: {err}"))
    }

    /// Docker's list output: each item's text and a newline; for a table, a header row first
    /// (the template run over `header`, a map from each field to its column name) and the
    /// whole aligned as Docker's tabwriter does.
    pub fn render_list(&self, items: &[Value], header: &Value) -> Result<String> {
        let mut rows = String::new();
        for item in items {
            rows.push_str(&self.execute(item)?);
            rows.push('\n');
        }
        match &self.header {
            // Docker ignores an error in the header row and prints what it got.
            Some(template) => {
                let mut text = template.execute_to_string(header).unwrap_or_default();
                text.push('\n');
                text.push_str(&rows);
                Ok(tabwrite(&text))
            }
            None => Ok(rows),
        }
    }
}

/// The `--format` a list command runs, if any: none for an empty one, and none for `table`
/// with `-q` (Docker prints the quiet IDs then).
pub fn chosen(format: Option<&str>, quiet: bool) -> Option<&str> {
    format.filter(|f| !(f.is_empty() || quiet && *f == "table"))
}

/// Builds a header value from `(field, column name)` pairs.
pub fn header(columns: &[(&str, &str)]) -> Value {
    Value::Map(Arc::new(
        columns
            .iter()
            .map(|(field, name)| (Arc::from(*field), Value::String((*name).into())))
            .collect(),
    ))
}

/// A map value (sorted keys, printed `map[...]`) from string fields, as the list commands'
/// rows are.
pub fn row(fields: Vec<(&str, String)>) -> Value {
    Value::Map(Arc::new(
        fields
            .into_iter()
            .map(|(field, text)| (Arc::from(field), Value::String(text.into())))
            .collect(),
    ))
}

fn compile(text: &str, header: bool) -> Result<Template> {
    let parse_error = |err: gotmpl::TemplateError| anyhow!("template parsing error: {err}");
    let functions = |template: Template| {
        let template = functions::install(template);
        if header {
            functions::install_header(template)
        } else {
            template
        }
    };
    // Parsing once as given reports syntax errors and unknown functions in Go's words.
    functions(Template::new(""))
        .parse(text)
        .map_err(parse_error)?;
    let (tree, defines) = Parser::new(text, "{{", "}}")
        .and_then(Parser::parse)
        .map_err(parse_error)?;
    // Go refuses an unknown function when parsing, before anything runs.
    let mut used = Vec::new();
    identifiers_in_list(&tree, &mut used);
    for define in &defines {
        identifiers_in_list(&define.body, &mut used);
    }
    if let Some((line, name)) = used.iter().find(|(_, n)| !functions::is_known(n)) {
        return Err(anyhow!(
            "template parsing error: template: :{line}: function {name:?} not defined"
        ));
    }
    let missing = if header {
        MissingKey::Invalid
    } else {
        MissingKey::Error
    };
    let mut template = functions(Template::new("").missing_key(missing))
        .parse(&format!("{{{{template \"{MAIN}\" .}}}}"))
        .map_err(parse_error)?
        .add_parse_tree(MAIN, rewrite_list(tree));
    for define in defines {
        template = template.add_parse_tree(&define.name, rewrite_list(define.body));
    }
    Ok(template)
}

/// The identifiers (function names) a template uses, with their lines.
fn identifiers_in_list(list: &ListNode, out: &mut Vec<(usize, String)>) {
    for node in &list.nodes {
        match node {
            Node::List(list) => identifiers_in_list(list, out),
            Node::Action(action) => identifiers_in_pipe(&action.pipe, out),
            Node::If(branch) | Node::With(branch) | Node::Range(branch) => {
                identifiers_in_pipe(&branch.pipe, out);
                identifiers_in_list(&branch.body, out);
                if let Some(other) = &branch.else_body {
                    identifiers_in_list(other, out);
                }
            }
            Node::Template(call) => {
                if let Some(pipe) = &call.pipe {
                    identifiers_in_pipe(pipe, out);
                }
            }
            _ => {}
        }
    }
}

fn identifiers_in_pipe(pipe: &PipeNode, out: &mut Vec<(usize, String)>) {
    for command in &pipe.commands {
        for arg in &command.args {
            identifiers_in_expr(arg, out);
        }
    }
}

fn identifiers_in_expr(expr: &Expr, out: &mut Vec<(usize, String)>) {
    match expr {
        Expr::Identifier(pos, name) => out.push((pos.line, name.to_string())),
        Expr::Pipe(_, pipe) => identifiers_in_pipe(pipe, out),
        Expr::Chain(_, inner, _) => identifiers_in_expr(inner, out),
        _ => {}
    }
}

// ANCHOR: rewrite
/// Makes the parsed template print as Go does: an action's value goes through `__print`,
/// `range` refuses a struct, and `printf` gets structs, maps and lists already printed.
fn rewrite_list(mut list: ListNode) -> ListNode {
    list.nodes = list.nodes.into_iter().map(rewrite_node).collect();
    list
}

fn rewrite_node(node: Node) -> Node {
    match node {
        Node::List(list) => Node::List(rewrite_list(list)),
        Node::Action(mut action) => {
            action.pipe = rewrite_pipe(action.pipe);
            if action.pipe.decl.is_empty() {
                push_stage(&mut action.pipe, functions::PRINT);
            }
            Node::Action(action)
        }
        Node::If(branch) => Node::If(rewrite_branch(branch, None)),
        Node::With(branch) => Node::With(rewrite_branch(branch, None)),
        Node::Range(branch) => Node::Range(rewrite_branch(branch, Some(functions::RANGE))),
        Node::Template(mut call) => {
            call.pipe = call.pipe.map(rewrite_pipe);
            Node::Template(call)
        }
        other => other,
    }
}

fn rewrite_branch(
    mut branch: gotmpl::parse::BranchNode,
    stage: Option<&str>,
) -> gotmpl::parse::BranchNode {
    branch.pipe = rewrite_pipe(branch.pipe);
    if let Some(stage) = stage {
        push_stage(&mut branch.pipe, stage);
    }
    branch.body = rewrite_list(branch.body);
    branch.else_body = branch.else_body.map(rewrite_list);
    branch
}

/// Appends `| name` to a pipeline.
fn push_stage(pipe: &mut PipeNode, name: &str) {
    let pos = pipe.pos;
    pipe.commands.push(CommandNode {
        pos,
        args: vec![Expr::Identifier(pos, SmolStr::new(name))],
    });
}

/// Rewrites `printf` commands (and the pipelines inside arguments).
fn rewrite_pipe(mut pipe: PipeNode) -> PipeNode {
    let mut commands = Vec::with_capacity(pipe.commands.len());
    for (i, mut command) in pipe.commands.into_iter().enumerate() {
        command.args = command.args.into_iter().map(rewrite_expr).collect();
        let is_printf =
            matches!(command.args.first(), Some(Expr::Identifier(_, n)) if n == "printf");
        if is_printf {
            let pos = command.pos;
            for arg in command.args.iter_mut().skip(1) {
                let inner = std::mem::replace(arg, Expr::Nil(pos));
                *arg = Expr::Pipe(
                    pos,
                    PipeNode {
                        pos,
                        decl: Vec::new(),
                        commands: vec![CommandNode {
                            pos,
                            args: vec![
                                Expr::Identifier(pos, SmolStr::new(functions::VALUE)),
                                inner,
                            ],
                        }],
                        is_assign: false,
                    },
                );
            }
            // The previous stage's value is printf's last operand.
            if i > 0 {
                commands.push(CommandNode {
                    pos,
                    args: vec![Expr::Identifier(pos, SmolStr::new(functions::VALUE))],
                });
            }
        }
        commands.push(command);
    }
    pipe.commands = commands;
    pipe
}

fn rewrite_expr(expr: Expr) -> Expr {
    match expr {
        Expr::Pipe(pos, pipe) => Expr::Pipe(pos, rewrite_pipe(pipe)),
        Expr::Chain(pos, inner, fields) => Expr::Chain(pos, Box::new(rewrite_expr(*inner)), fields),
        other => other,
    }
}
// ANCHOR_END: rewrite

/// A time as Go's `time.Time.String()` prints it, in UTC (`2024-05-01 12:34:56 +0000 UTC`):
/// the `CreatedAt` field of `ps` and `images`.
pub fn go_time(time: std::time::SystemTime) -> String {
    format!(
        "{} +0000 UTC",
        rfc3339_seconds(time)
            .replace('T', " ")
            .trim_end_matches('Z')
    )
}

/// A time in Go's `time.RFC3339` layout, in UTC (`2024-05-01T12:34:56Z`).
pub fn rfc3339_seconds(time: std::time::SystemTime) -> String {
    let seconds = time
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    crate::state::rfc3339(std::time::UNIX_EPOCH + std::time::Duration::from_secs(seconds))
}

mod functions;

#[cfg(test)]
mod tests;
