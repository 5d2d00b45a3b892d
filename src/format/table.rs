//! Go's `text/tabwriter` as Docker's CLI configures it for tables (`minwidth 10, tabwidth 1,
//! padding 3, padchar ' '`, no flags): tab-terminated cells are aligned in columns.
//!
//! A column block is a run of consecutive lines that all have a cell in that column; its
//! width is its widest cell plus the padding, at least the minimum width. The text after a
//! line's last tab is not a cell of any column and is never padded. A line without a tab ends
//! every block (tabwriter flushes there).

// ANCHOR: tabwriter
const MIN_WIDTH: usize = 10;
const PADDING: usize = 3;

/// Aligns `text` as `tabwriter.NewWriter(out, 10, 1, 3, ' ', 0)` does.
pub fn tabwrite(text: &str) -> String {
    let mut out = String::new();
    let mut block: Vec<Vec<&str>> = Vec::new();
    let mut lines = text.split('\n').peekable();
    while let Some(line) = lines.next() {
        let cells: Vec<&str> = line.split('\t').collect();
        let single = cells.len() == 1;
        block.push(cells);
        let last = lines.peek().is_none();
        if single || last {
            let mut widths = Vec::new();
            format_block(&mut out, &block, &mut widths, 0, block.len());
            // tabwriter writes the newline of every line but the text's last.
            if !last {
                out.push('\n');
            }
            block.clear();
        }
    }
    out
}

/// Go's `(*Writer).format`: finds the column blocks of column `widths.len()` in
/// `lines[line0..line1]`, recursing into each for the next column.
fn format_block(
    out: &mut String,
    lines: &[Vec<&str>],
    widths: &mut Vec<usize>,
    mut line0: usize,
    line1: usize,
) {
    let column = widths.len();
    let mut this = line0;
    while this < line1 {
        if column + 1 >= lines[this].len() {
            this += 1;
            continue;
        }
        write_lines(out, lines, widths, line0, this);
        line0 = this;
        let mut width = MIN_WIDTH;
        while this < line1 && column + 1 < lines[this].len() {
            width = width.max(lines[this][column].chars().count() + PADDING);
            this += 1;
        }
        widths.push(width);
        format_block(out, lines, widths, line0, this);
        widths.pop();
        line0 = this;
    }
    write_lines(out, lines, widths, line0, line1);
}

fn write_lines(out: &mut String, lines: &[Vec<&str>], widths: &[usize], from: usize, to: usize) {
    for (i, cells) in lines.iter().enumerate().take(to).skip(from) {
        for (j, cell) in cells.iter().enumerate() {
            out.push_str(cell);
            if j + 1 < cells.len() && j < widths.len() {
                let pad = widths[j].saturating_sub(cell.chars().count());
                out.extend(std::iter::repeat_n(' ', pad));
            }
        }
        if i + 1 < lines.len() {
            out.push('\n');
        }
    }
}
// ANCHOR_END: tabwriter

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align_like_gos_tabwriter() {
        assert_eq!(
            tabwrite("REPOSITORY\tTAG\tSIZE\nbusybox\tlatest\t4.26MB\n"),
            "REPOSITORY   TAG       SIZE\nbusybox      latest    4.26MB\n"
        );
        // An empty last cell leaves the padding of the cell before it, as Go's does.
        assert_eq!(tabwrite("a\tb\t\n"), "a         b         \n");
        // A line without a tab ends the column block.
        assert_eq!(
            tabwrite("longer-than-ten\tx\nplain\na\tb\n"),
            "longer-than-ten   x\nplain\na         b\n"
        );
        // A block only spans the lines that have the column.
        assert_eq!(tabwrite("a\tb\tc\nd\n"), "a         b         c\nd\n");
    }
}
