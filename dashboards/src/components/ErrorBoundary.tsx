import { Component, type ReactNode } from 'react';

interface Props {
  /** Changing the key (section, data version) clears a caught error. */
  resetKey: string;
  children: ReactNode;
}

/** A view that throws while rendering shows an error panel instead of blanking the page. */
export class ErrorBoundary extends Component<Props, { error: Error | null; key: string }> {
  override state = { error: null as Error | null, key: this.props.resetKey };

  static getDerivedStateFromError(error: Error) {
    return { error };
  }

  static getDerivedStateFromProps(props: Props, state: { error: Error | null; key: string }) {
    return props.resetKey !== state.key ? { error: null, key: props.resetKey } : null;
  }

  override render() {
    if (!this.state.error) return this.props.children;
    return (
      <div className="banner" role="alert" data-testid="view-error">
        <span>This section could not be drawn: {this.state.error.message}</span>
        <button type="button" className="btn btn--small" onClick={() => this.setState({ error: null })}>
          Retry
        </button>
      </div>
    );
  }
}
