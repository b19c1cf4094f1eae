/**
 * CSV (RFC 4180) as exports write it and imports read it: comma-separated, CRLF line ends, a field
 * quoted when it holds a comma, a quote, CR or LF (quotes doubled inside). Pure, so the HTTP
 * transport and the CLI write the same bytes.
 */

/** One CSV record (with its CRLF), fields quoted only where needed. */
export function csvLine(fields: readonly string[]): string {
  return `${fields.map(csvField).join(',')}\r\n`;
}

/** One field, quoted if it must be. */
export function csvField(value: string): string {
  return /[",\r\n]/.test(value) ? `"${value.replace(/"/g, '""')}"` : value;
}

/** A CSV document that could not be read, with the 1-based line where reading stopped. */
export interface CsvSyntaxError {
  readonly line: number;
  readonly message: string;
}

/**
 * Parses a CSV document into records of fields (LF or CRLF line ends; a UTF-8 byte-order mark and
 * a final line end are ignored; blank lines are skipped). Each record carries the 1-based line it
 * starts on, so row-by-row reports can point at it.
 */
export function parseCsv(
  text: string,
): { readonly records: { line: number; fields: string[] }[] } | CsvSyntaxError {
  const records: { line: number; fields: string[] }[] = [];
  let i = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  let line = 1;
  let fields: string[] = [];
  let field = '';
  let recordLine = 1;
  let quoted = false;
  let fieldStarted = false;
  const endRecord = () => {
    fields.push(field);
    if (!(fields.length === 1 && fields[0] === '')) records.push({ line: recordLine, fields });
    fields = [];
    field = '';
    fieldStarted = false;
  };
  while (i < text.length) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i += 2;
          continue;
        }
        quoted = false;
        i += 1;
        const next = text[i];
        if (next !== undefined && next !== ',' && next !== '\n' && next !== '\r') {
          return { line, message: 'a quoted field must end at a comma or the end of the line' };
        }
        continue;
      }
      if (c === '\n') line += 1;
      field += c;
      i += 1;
      continue;
    }
    if (c === '"') {
      if (fieldStarted) return { line, message: 'a quote inside an unquoted field' };
      quoted = true;
      fieldStarted = true;
      i += 1;
      continue;
    }
    if (c === ',') {
      fields.push(field);
      field = '';
      fieldStarted = false;
      i += 1;
      continue;
    }
    if (c === '\r' || c === '\n') {
      endRecord();
      i += c === '\r' && text[i + 1] === '\n' ? 2 : 1;
      line += 1;
      recordLine = line;
      continue;
    }
    field += c;
    fieldStarted = true;
    i += 1;
  }
  if (quoted) return { line, message: 'a quoted field is not closed' };
  if (field !== '' || fields.length > 0) endRecord();
  return { records };
}
