import { fireEvent, render, screen } from '@testing-library/svelte';
import { describe, expect, it, vi } from 'vitest';
import LocalApi from './LocalApi.svelte';

describe('LocalApi', () => {
  it('applies the form and shows the running server, examples and log', async () => {
    const onApply = vi.fn();
    render(LocalApi, {
      settings: { enabled: false, host: '127.0.0.1', port: 8080, api_key: null },
      status: { running: true, url: 'http://127.0.0.1:8080/v1', error: null },
      log: [{ at_ms: 1_700_000_000_000, method: 'POST', path: '/v1/chat/completions', status: 200, duration_ms: 12.4, model: null, prompt_tokens: null, cached_tokens: null }],
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

  it('shows the coding agents setups and each request\'s model mapping and cached tokens', () => {
    render(LocalApi, {
      settings: { enabled: true, host: '127.0.0.1', port: 8080, api_key: 'lg-k' },
      status: { running: true, url: 'http://127.0.0.1:8080/v1', error: null },
      log: [{ at_ms: 1_700_000_000_000, method: 'POST', path: '/v1/messages', status: 200, duration_ms: 900,
              model: 'claude-sonnet-4-5 → GLM-5.2', prompt_tokens: 5210, cached_tokens: 5120 }],
      onApply: vi.fn(),
      modelName: 'GLM-5.2',
    });
    const claude = JSON.parse(screen.getByTestId('api-example-claude-code').textContent ?? '');
    expect(claude.env).toMatchObject({
      ANTHROPIC_BASE_URL: 'http://127.0.0.1:8080', ANTHROPIC_AUTH_TOKEN: 'lg-k', ANTHROPIC_MODEL: 'GLM-5.2',
      CLAUDE_CODE_ATTRIBUTION_HEADER: '0',
    });
    const codex = screen.getByTestId('api-example-codex').textContent ?? '';
    expect(codex).toContain('base_url = "http://127.0.0.1:8080/v1"');
    expect(codex).toContain('wire_api = "responses"');
    expect(codex).toContain('env_key = "LOCALGLM_API_KEY"');
    const row = screen.getAllByTestId('api-log-row')[0];
    expect(row).toHaveTextContent('claude-sonnet-4-5 → GLM-5.2');
    expect(screen.getByTestId('api-log-tokens')).toHaveTextContent('90 / 5120');
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
