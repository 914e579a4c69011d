import { fireEvent, render, screen } from '@testing-library/svelte';
import { describe, expect, it, vi } from 'vitest';
import RemoteServers from './RemoteServers.svelte';

const gpu = { id: 'remote-1', name: 'GPU node', base_url: 'http://gpu:8000/v1', api_key: 'k', model: 'zai-org/GLM-5.2' };

describe('RemoteServers', () => {
  it('lists servers with the one in use marked, and switches or removes them', async () => {
    const props = { servers: [gpu, { ...gpu, id: 'remote-2', name: '', api_key: null }], activeId: 'remote-1', onAdd: vi.fn(), onUse: vi.fn(), onRemove: vi.fn() };
    render(RemoteServers, props);
    const rows = screen.getAllByTestId('remote-server');
    expect(rows[0]).toHaveTextContent('GPU node');
    expect(rows[0]).toHaveTextContent('in use');
    expect(rows[0]).toHaveTextContent('key set');
    // Without a name the model id shows; the key itself never does.
    expect(rows[1]).toHaveTextContent('zai-org/GLM-5.2');
    expect(rows[1]).not.toHaveTextContent('in use');
    expect(document.body).not.toHaveTextContent(/\bk\b · /);
    await fireEvent.click(screen.getAllByTestId('remote-use')[1]);
    expect(props.onUse).toHaveBeenCalledWith('remote-2');
    await fireEvent.click(screen.getAllByTestId('remote-remove')[0]);
    expect(props.onRemove).toHaveBeenCalledWith('remote-1');
  });

  it('connects a new server, clearing the form only when it worked', async () => {
    let works = false;
    const refused = { kind: 'load_failed' as const, message: 'Could not use the server gpu.', detail: 'http://gpu:8000/v1 refused the API key (401): check the key' };
    const onAdd = vi.fn(async () => (works ? null : refused));
    render(RemoteServers, { servers: [], activeId: null, onAdd, onUse: vi.fn(), onRemove: vi.fn() });
    const add = screen.getByTestId('remote-add');
    expect(add).toBeDisabled();
    await fireEvent.input(screen.getByTestId('remote-url'), { target: { value: ' gpu:8000 ' } });
    await fireEvent.input(screen.getByTestId('remote-key'), { target: { value: 'secret' } });
    expect(screen.getByTestId('remote-key')).toHaveAttribute('type', 'password');
    await fireEvent.click(add);
    expect(onAdd).toHaveBeenCalledWith({ id: '', name: '', base_url: 'gpu:8000', api_key: 'secret', model: null });
    await vi.waitFor(() => expect(add).not.toBeDisabled());
    expect(screen.getByTestId('remote-url')).toHaveValue(' gpu:8000 ');
    expect(screen.getByTestId('remote-error')).toHaveTextContent('Could not use the server gpu.');
    expect(screen.getByTestId('remote-error')).toHaveTextContent('(401)');
    works = true;
    await fireEvent.click(add);
    await vi.waitFor(() => expect(screen.getByTestId('remote-url')).toHaveValue(''));
    expect(screen.queryByTestId('remote-error')).toBeNull();
  });
});
