// Replaced by the bundler with the package version; read from package.json when run from source.
declare const __KEEPER_ROTATE_VERSION__: string | undefined;

export const VERSION: string = typeof __KEEPER_ROTATE_VERSION__ === 'string' ? __KEEPER_ROTATE_VERSION__ : '0.1.0-dev';
