import { fireEvent, render, screen, waitFor } from '@testing-library/svelte';
import { describe, expect, it, vi } from 'vitest';
import ExportMenu from './ExportMenu.svelte';
import ImportConversation from './ImportConversation.svelte';

describe('ExportMenu', () => {
  it('saves in the format chosen and says where, or why not', async () => {
    const onExport = vi
      .fn()
      .mockResolvedValueOnce({ path: '/data/exports/Trip.md', text: '# Trip\n' })
      .mockResolvedValueOnce({ kind: 'io', message: 'Could not write the export.', detail: 'disk full' });
    render(ExportMenu, { onExport });
    await fireEvent.click(screen.getByTestId('export'));
    await fireEvent.click(screen.getByTestId('export-markdown'));
    expect(onExport).toHaveBeenLastCalledWith('markdown');
    await waitFor(() => expect(screen.getByTestId('export-notice')).toHaveAttribute('data-path', '/data/exports/Trip.md'));
    expect(screen.queryByTestId('export-json')).toBeNull();

    await fireEvent.click(screen.getByTestId('export'));
    await fireEvent.click(screen.getByTestId('export-json'));
    expect(onExport).toHaveBeenLastCalledWith('json');
    await waitFor(() => expect(screen.getByTestId('export-notice')).toHaveTextContent('Could not write the export. (disk full)'));
    await fireEvent.click(screen.getByTestId('export-dismiss'));
    expect(screen.queryByTestId('export-notice')).toBeNull();
  });
});

describe('ImportConversation', () => {
  it('shows why a file is refused, keeps the text, and closes on success', async () => {
    const onImport = vi
      .fn()
      .mockResolvedValueOnce({
        kind: 'invalid_request',
        message: 'That is not a LocalGLM conversation file; nothing was imported.',
        detail: 'not JSON',
      })
      .mockResolvedValueOnce({ id: 'c9', title: 'Imported', updated_at_ms: 1, message_count: 2 });
    render(ImportConversation, { onImport });
    await fireEvent.click(screen.getByTestId('import-conversation'));
    expect(screen.getByTestId('import-confirm')).toBeDisabled();
    await fireEvent.input(screen.getByTestId('import-text'), { target: { value: '{ nope' } });
    await fireEvent.click(screen.getByTestId('import-confirm'));
    await waitFor(() => expect(screen.getByTestId('import-error')).toHaveTextContent('nothing was imported. not JSON'));
    expect(screen.getByTestId('import-text')).toHaveValue('{ nope');

    await fireEvent.input(screen.getByTestId('import-text'), { target: { value: '{"format":"localglm-conversation"}' } });
    await fireEvent.click(screen.getByTestId('import-confirm'));
    await waitFor(() => expect(screen.queryByTestId('import-panel')).toBeNull());
    expect(onImport).toHaveBeenLastCalledWith('{"format":"localglm-conversation"}');
  });
});
