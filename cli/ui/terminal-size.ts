/** The terminal's size for an Ink view, following resizes; `columns`/`rows` given win (tests, fixed layouts). */
import { useStdout } from 'ink';
import { useEffect, useState } from 'react';

type Out = NodeJS.WriteStream | undefined;

const measure = (stdout: Out) => ({ columns: stdout?.columns || 80, rows: stdout?.rows || 24 });

export function useTerminalSize(columns?: number, rows?: number): { columns: number; rows: number } {
  const { stdout } = useStdout();
  const [size, setSize] = useState(() => measure(stdout));
  useEffect(() => {
    if (!stdout || typeof stdout.on !== 'function') return;
    const onResize = () => setSize(measure(stdout));
    stdout.on('resize', onResize);
    return () => {
      stdout.off('resize', onResize);
    };
  }, [stdout]);
  return { columns: columns ?? size.columns, rows: rows ?? size.rows };
}
