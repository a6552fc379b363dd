// CSV (RFC 4180: quoted fields with commas, quotes as "", newlines inside quotes; CRLF; BOM),
// for CT-RATE's tables (ctrate.ts). Every problem is a DataError naming `source:line`.
// Browser-safe.
import { DataError } from '../errors.ts';

export interface CsvTable {
  header: string[];
  rows: string[][];
  /** 1-based line number where each row starts (for messages). */
  lines: number[];
}

export function parseCsv(text: string, source = 'csv'): CsvTable {
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  const records: string[][] = [];
  const starts: number[] = [];
  let field = '';
  let rec: string[] = [];
  let line = 1;
  let recStart = 1;
  let i = 0;
  const n = text.length;
  let quoted = false;
  let atFieldStart = true;
  while (i < n) {
    const c = text[i]!;
    if (quoted) {
      if (c === '"') {
        if (text[i + 1] === '"') {
          field += '"';
          i += 2;
          continue;
        }
        quoted = false;
        i++;
        continue;
      }
      if (c === '\n') line++;
      // Take a run of ordinary characters at once (fast on long report fields).
      let j = i + 1;
      while (j < n && text[j] !== '"' && text[j] !== '\n') j++;
      field += text.slice(i, j);
      i = j;
      continue;
    }
    if (c === '"' && atFieldStart) {
      quoted = true;
      atFieldStart = false;
      i++;
      continue;
    }
    if (c === ',') {
      rec.push(field);
      field = '';
      atFieldStart = true;
      i++;
      continue;
    }
    if (c === '\n' || c === '\r') {
      rec.push(field);
      field = '';
      if (!(rec.length === 1 && rec[0] === '')) {
        records.push(rec);
        starts.push(recStart);
      }
      rec = [];
      atFieldStart = true;
      if (c === '\r' && text[i + 1] === '\n') i++;
      i++;
      line++;
      recStart = line;
      continue;
    }
    let j = i + 1;
    while (j < n && text[j] !== ',' && text[j] !== '\n' && text[j] !== '\r' && text[j] !== '"') j++;
    field += text.slice(i, j);
    atFieldStart = false;
    i = j;
  }
  if (quoted) throw new DataError(`${source}:${recStart}`, 'quote', 'unterminated quoted field');
  if (field !== '' || rec.length > 0) {
    rec.push(field);
    records.push(rec);
    starts.push(recStart);
  }
  if (records.length === 0) throw new DataError(source, 'header', 'empty file');
  const header = records[0]!.map((h) => h.trim());
  const rows = records.slice(1);
  const lines = starts.slice(1);
  rows.forEach((r, k) => {
    if (r.length !== header.length) throw new DataError(`${source}:${lines[k]}`, 'row', `expected ${header.length} fields (as in the header), got ${r.length}`);
  });
  return { header, rows, lines };
}

/** Column index by name; DataError naming the column when it is missing. */
export function csvColumn(t: CsvTable, name: string, source: string): number {
  const i = t.header.indexOf(name);
  if (i < 0) throw new DataError(source, name, `missing column '${name}' (columns: ${t.header.slice(0, 30).join(', ')})`);
  return i;
}
