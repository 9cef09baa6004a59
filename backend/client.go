package backend

import (
	"context"
	"fmt"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/connkit/connkit/adapter"
)

// ClientOptions translates the configuration into adapter options: timeouts, retries,
// rate limit, static headers, authentication, and the backend name for the audit log.
// onRotate receives rotated OAuth2 refresh tokens so the caller can persist them; it may
// be nil for other auth types (a nil onRotate with oauth2_refresh_token keeps rotated
// tokens in memory only).
func (c *Config) ClientOptions(onRotate func(ctx context.Context, tok *oauth2.Token) error) ([]adapter.Option, error) {
	opts := []adapter.Option{adapter.WithBackendName(c.Name)}
	if c.ConnectTimeout > 0 {
		opts = append(opts, adapter.WithConnectTimeout(c.ConnectTimeout.Std()))
	}
	if c.ReadTimeout > 0 {
		opts = append(opts, adapter.WithReadTimeout(c.ReadTimeout.Std()))
	}
	if c.Retry.MaxAttempts > 0 {
		opts = append(opts, adapter.WithRetries(c.Retry.MaxAttempts-1))
	}
	if c.Retry.MinWait > 0 || c.Retry.MaxWait > 0 {
		opts = append(opts, adapter.WithRetryWait(c.Retry.MinWait.Std(), c.Retry.MaxWait.Std()))
	}
	if c.Retry.MaxRetryAfter > 0 {
		opts = append(opts, adapter.WithMaxRetryAfter(c.Retry.MaxRetryAfter.Std()))
	}
	if c.RateLimit.PerSecond > 0 {
		opts = append(opts, adapter.WithRateLimit(c.RateLimit.PerSecond, max(c.RateLimit.Burst, 1)))
	}
	for k, v := range c.Headers {
		opts = append(opts, adapter.WithDefaultHeader(k, v))
	}
	auth, err := c.Auth.strategy(onRotate)
	if err != nil {
		return nil, fmt.Errorf("backend %q: %w", c.Name, err)
	}
	if auth != nil {
		opts = append(opts, adapter.WithAuth(auth))
	}
	return opts, nil
}

// strategy builds the adapter.Auth the configuration names (nil for none).
func (a *AuthConfig) strategy(onRotate func(context.Context, *oauth2.Token) error) (adapter.Auth, error) {
	switch a.Type {
	case "", AuthNone:
		return nil, nil
	case AuthBasic:
		return adapter.BasicAuth(a.Username, a.Password), nil
	case AuthBearer:
		return adapter.BearerAuth(a.Token), nil
	case AuthAPIKey:
		name := a.Name
		if a.In == "query" {
			if name == "" {
				name = "api_key"
			}
			return adapter.APIKeyQuery(name, a.APIKey), nil
		}
		if name == "" {
			name = "X-API-Key"
		}
		return adapter.APIKeyHeader(name, a.APIKey), nil
	case AuthOAuth2ClientCredentials:
		return adapter.OAuth2ClientCredentials(&clientcredentials.Config{
			ClientID: a.ClientID, ClientSecret: a.ClientSecret, TokenURL: a.TokenURL, Scopes: a.Scopes,
		}), nil
	case AuthOAuth2RefreshToken:
		cfg := &oauth2.Config{ClientID: a.ClientID, ClientSecret: a.ClientSecret, Scopes: a.Scopes,
			Endpoint: oauth2.Endpoint{TokenURL: a.TokenURL}}
		return adapter.OAuth2RefreshToken(cfg, &oauth2.Token{RefreshToken: a.RefreshToken}, onRotate), nil
	case AuthHMAC:
		var opts []adapter.HMACOption
		if a.Header != "" {
			opts = append(opts, adapter.HMACSignatureHeader(a.Header))
		}
		return adapter.HMACAuth([]byte(a.Secret), opts...), nil
	}
	return nil, fmt.Errorf("unknown auth type %q", a.Type)
}

// NewClient builds the adapter client the configuration describes; extra options (a
// recorder, a logger…) are applied after the configured ones.
func (c *Config) NewClient(extra ...adapter.Option) (*adapter.Client, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	opts, err := c.ClientOptions(nil)
	if err != nil {
		return nil, err
	}
	return adapter.New(c.BaseURL, append(opts, extra...)...)
}
