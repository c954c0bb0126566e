// Package auth holds the portal's authentication rules: Argon2id password
// hashing with the 800-63B length and breached-password rules, TOTP with
// replay rejection, single-use recovery codes, enrolment codes, and rate
// limits kept in PostgreSQL so they hold across replicas.
package auth
