import { fireEvent, render, screen } from '@testing-library/svelte';
import { describe, expect, it, vi } from 'vitest';
import LocalApi from './LocalApi.svelte';

describe('LocalApi', () => {
  it('applies the form and shows the running server, examples and log', async () => {
    const onApply = vi.fn();
    render(LocalApi, {
      settings: { enabled: false, host: '127.0.0.1', port: 8080, api_key: null },
      status: { running: true, url: 'http://127.0.0.1:8080/v1', error: null },
      log: [{ at_ms: 1_700_000_000_000, method: 'POST', path: '/v1/chat/completions', status: 200, duration_ms: 12.4 }],
      onApply,
    });
    await fireEvent.click(screen.getByTestId('api-enabled'));
    await fireEvent.input(screen.getByTestId('api-port'), { target: { value: '9000' } });
    await fireEvent.input(screen.getByTestId('api-key'), { target: { value: ' k ' } });
    await fireEvent.click(screen.getByTestId('api-apply'));
    expect(onApply).toHaveBeenCalledWith({ enabled: true, host: '127.0.0.1', port: 9000, api_key: 'k' });
    expect(screen.getByTestId('api-status')).toHaveTextContent('Running at http://127.0.0.1:8080/v1');
    expect(screen.getByTestId('api-example-python')).toHaveTextContent('base_url="http://127.0.0.1:8080/v1"');
    expect(screen.getAllByTestId('api-log-row')[0]).toHaveTextContent('POST /v1/chat/completions');
  });

  it('says why it is not running', () => {
    render(LocalApi, {
      settings: { enabled: true, host: '0.0.0.0', port: 80, api_key: null },
      status: { running: false, url: null, error: 'cannot listen on 0.0.0.0:80: permission denied' },
      log: [],
      onApply: vi.fn(),
    });
    expect(screen.getByTestId('api-status')).toHaveTextContent('permission denied');
    expect(screen.getByText(/Other computers on your networks/)).toBeInTheDocument();
  });
});
