package backend

import (
	"context"
	"fmt"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"

	"github.com/connkit/connkit/adapter"
)

// clientOptions turns the configuration into adapter options: auth, timeouts, rate limit
// and its header style, retries, default headers. The backend's own options (recorder,
// logger, the app's extra client options) come after them, so the app has the last word.
func (c *Config) clientOptions(onRotate func(context.Context, *oauth2.Token) error) ([]adapter.Option, error) {
	opts := []adapter.Option{adapter.WithBackendName(c.Name)}
	auth, err := c.Auth.adapterAuth(onRotate)
	if err != nil {
		return nil, err
	}
	if auth != nil {
		opts = append(opts, adapter.WithAuth(auth))
	}
	if c.ConnectTimeout > 0 || c.ReadTimeout > 0 {
		opts = append(opts, adapter.WithTimeouts(c.ConnectTimeout.Std(), c.ReadTimeout.Std())) // zero: the default
	}
	if c.RateLimit.PerSecond > 0 {
		burst := c.RateLimit.Burst
		if burst == 0 {
			burst = 1
		}
		opts = append(opts, adapter.WithRateLimit(c.RateLimit.PerSecond, burst))
	}
	if c.RateLimit.Headers != "" {
		opts = append(opts, adapter.WithLimitHeaders(c.RateLimit.Headers))
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
	for k, v := range c.Headers {
		opts = append(opts, adapter.WithDefaultHeader(k, v))
	}
	return opts, nil
}

// adapterAuth builds the configured authentication; nil for none. onRotate receives
// rotated OAuth2 refresh tokens.
func (a *AuthConfig) adapterAuth(onRotate func(context.Context, *oauth2.Token) error) (adapter.Auth, error) {
	switch a.Type {
	case "", authNone:
		return nil, nil
	case authBasic:
		return adapter.BasicAuth(a.Username, a.Password), nil
	case authBearer:
		return adapter.BearerAuth(a.Token), nil
	case authAPIKey:
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
	case authOAuth2ClientCredentials:
		return adapter.OAuth2ClientCredentials(&clientcredentials.Config{
			ClientID: a.ClientID, ClientSecret: a.ClientSecret, TokenURL: a.TokenURL, Scopes: a.Scopes,
		}), nil
	case authOAuth2RefreshToken:
		cfg := &oauth2.Config{ClientID: a.ClientID, ClientSecret: a.ClientSecret, Scopes: a.Scopes,
			Endpoint: oauth2.Endpoint{TokenURL: a.TokenURL}}
		return adapter.OAuth2RefreshToken(cfg, &oauth2.Token{RefreshToken: a.RefreshToken}, onRotate), nil
	case authHMAC:
		return adapter.HMACAuth([]byte(a.Secret), adapter.HMACFormat{SignatureHeader: a.Header}), nil
	}
	return nil, fmt.Errorf("%w: unknown auth type %q", ErrInvalidConfig, a.Type)
}
